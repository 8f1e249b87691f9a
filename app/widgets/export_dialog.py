"""The File > Export dialog: which format, which file, and for PNG the scale.

Formats: PNG (at 1x, 2x or 4x the view's pixels), SVG, GraphML, JSON and CSV (two tables,
``NAME.nodes.csv`` and ``NAME.edges.csv``). Changing the format changes the file's suffix. The
dialog only asks; :mod:`app.export.write` writes (and reports a path that cannot be written). It is opened
through :func:`app.widgets.dialogs.ask_export`, which tests replace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QWidget)

FORMATS = (("png", "PNG image"), ("svg", "SVG vector image"),
           ("graphml", "GraphML graph (Gephi, yEd, networkx)"),
           ("json", "JSON: nodes, weights, ablation state, metrics"),
           ("csv", "CSV tables: NAME.nodes.csv and NAME.edges.csv"))
SCALES = (1, 2, 4)


@dataclass(frozen=True)
class ExportChoice:
    format: str
    path: Path
    scale: float = 1.0


class ExportDialog(QDialog):
    """See the module docstring. ``size``: the view's size in pixels (shown for the PNG scale)."""

    def __init__(self, parent: QWidget | None, start_path: Path, size: tuple[int, int]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export view")
        self._size = size
        self.format_combo = QComboBox()
        for fmt, name in FORMATS:
            self.format_combo.addItem(name, fmt)
        start = Path(start_path)
        index = next((i for i, (fmt, _) in enumerate(FORMATS) if start.suffix == f".{fmt}"), 0)
        self.format_combo.setCurrentIndex(index)
        self.scale_combo = QComboBox()
        for s in SCALES:
            self.scale_combo.addItem(f"{s}x", s)
        self.size_label = QLabel()
        self.path_edit = QLineEdit(str(start))
        self.path_edit.setMinimumWidth(380)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        scale_row = QHBoxLayout()
        scale_row.addWidget(self.scale_combo)
        scale_row.addWidget(self.size_label, 1)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Format", self.format_combo)
        form.addRow("Scale", scale_row)
        form.addRow("File", row)
        form.addRow(self.buttons)
        self.format_combo.currentIndexChanged.connect(self._on_format)
        self.scale_combo.currentIndexChanged.connect(self._update)
        self.path_edit.textChanged.connect(self._update)
        self._update()

    @property
    def format(self) -> str:
        return self.format_combo.currentData()

    def _on_format(self) -> None:
        text = self.path_edit.text().strip()
        if text:
            path = Path(text)
            self.path_edit.setText(str(path.with_suffix(f".{self.format}")))
        self._update()

    def _update(self) -> None:
        png = self.format == "png"
        self.scale_combo.setEnabled(png)
        scale = self.scale_combo.currentData() if png else 1
        w, h = self._size
        self.size_label.setText(f"{w * scale} x {h * scale} pixels" if png else "vector / data: no pixels")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(self.path_edit.text().strip()))

    def _browse(self) -> None:
        fmt = self.format
        chosen, _ = QFileDialog.getSaveFileName(self, "Export to", self.path_edit.text(),
                                                f"{self.format_combo.currentText()} (*.{fmt})")
        if chosen:
            self.path_edit.setText(chosen)

    def choice(self) -> ExportChoice:
        path = Path(self.path_edit.text().strip()).expanduser()
        if path.suffix == "":
            path = path.with_suffix(f".{self.format}")
        scale = float(self.scale_combo.currentData()) if self.format == "png" else 1.0
        return ExportChoice(self.format, path, scale)
