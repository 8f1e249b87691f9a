"""The File > Import OpenAI model dialog: the model folder (``beeg_config.json`` + ``final_model.pt``),
optionally the tokenizer folder (``tinypython/``: ``encoder.json`` + ``vocab.bpe``) and the circuit
folder (``viz/<model>/``), and the new run folder to write. The dialog only asks; the import runs as
a background job (:mod:`app.window.importing`). Opened through :func:`app.widgets.dialogs.ask_import`,
which tests replace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QWidget)


@dataclass(frozen=True)
class ImportChoice:
    model_dir: Path
    out: Path
    tokenizer_dir: Path | None = None
    circuits_dir: Path | None = None


class ImportDialog(QDialog):
    """See the module docstring. ``start_dir``: where the folder pickers start."""

    FIELDS = (("model", "Model folder", "beeg_config.json + final_model.pt (required)"),
              ("tokenizer", "Tokenizer folder", "tinypython/: encoder.json + vocab.bpe (optional)"),
              ("circuits", "Circuit folder", "viz/<model>/ with <task>/<sweep>/<k>/viz_data.pt (optional)"),
              ("out", "New run folder", "where the imported run is written (must not exist yet)"))

    def __init__(self, parent: QWidget | None, start_dir: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Import OpenAI model")
        self._start = start_dir
        self.edits: dict[str, QLineEdit] = {}
        form = QFormLayout(self)
        form.addRow(QLabel("Open one of the models released with Gao et al. 2025 (csp_yolo1, csp_yolo2, ...)."))
        for key, label, hint in self.FIELDS:
            edit = QLineEdit()
            edit.setPlaceholderText(hint)
            edit.setMinimumWidth(420)
            edit.textChanged.connect(self._update)
            browse = QPushButton("Browse…")
            browse.clicked.connect(lambda _=False, k=key: self._browse(k))
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(browse)
            form.addRow(label, row)
            self.edits[key] = edit
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self._update()

    def _browse(self, key: str) -> None:
        chosen = QFileDialog.getExistingDirectory(self, dict((k, t) for k, t, _ in self.FIELDS)[key],
                                                  self.edits[key].text() or self._start)
        if chosen:
            self.edits[key].setText(chosen)
            if key == "model" and not self.edits["out"].text():
                self.edits["out"].setText(str(Path(chosen).parent / f"{Path(chosen).name}-imported"))

    def _update(self) -> None:
        ok = bool(self.edits["model"].text().strip() and self.edits["out"].text().strip())
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def choice(self) -> ImportChoice:
        text = {k: e.text().strip() for k, e in self.edits.items()}
        path = lambda k: Path(text[k]).expanduser() if text[k] else None  # noqa: E731
        return ImportChoice(model_dir=path("model"), out=path("out"), tokenizer_dir=path("tokenizer"),
                            circuits_dir=path("circuits"))
