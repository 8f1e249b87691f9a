"""The side panels: run browser (bundled demo, recent runs, open folder, the run's config), task picker
and the log with a progress bar. They emit what the user asked for; the main window acts on it.
:func:`add_dock` puts a panel into a dock of a main window. Knows nothing about threads or the engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QDockWidget, QFormLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QMainWindow, QPlainTextEdit, QProgressBar, QPushButton, QSplitter, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from app.widgets import theme

ROLE_PATH = Qt.ItemDataRole.UserRole


def add_dock(window: QMainWindow, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea,
             min_width: int = 0) -> QDockWidget:
    """A dock titled ``title`` holding ``widget``, added to ``window`` in ``area``. ``name`` is its
    object name, which saving and restoring the window's layout needs; ``min_width``: the narrowest
    the dock may be dragged (its widgets stay readable)."""
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setWidget(widget)
    if min_width:
        dock.setMinimumWidth(min_width)
    window.addDockWidget(area, dock)
    return dock


def _scalar_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def fill_tree(parent: QTreeWidget | QTreeWidgetItem, value: Any) -> None:
    """Add ``value`` (JSON data) under ``parent``: objects and lists become nested key/value rows."""
    entries = [(str(k), v) for k, v in value.items()] if isinstance(value, dict) else \
        [(f"[{i}]", v) for i, v in enumerate(value)]
    for key, child in entries:
        item = QTreeWidgetItem([key, ""])
        if isinstance(child, (dict, list)):
            item.setText(1, f"{{{len(child)}}}" if isinstance(child, dict) else f"[{len(child)}]")
            fill_tree(item, child)
        else:
            item.setText(1, _scalar_text(child))
            item.setToolTip(1, _scalar_text(child))
        if isinstance(parent, QTreeWidget):
            parent.addTopLevelItem(item)
        else:
            parent.addChild(item)


def model_summary(config: dict[str, Any]) -> str:
    """A short line like "2 layers, d_model 128, ..." from a config's ``model`` section."""
    model = config.get("model")
    if not isinstance(model, dict):
        return "(no model section)"
    parts = [f"{model['n_layer']} layers"] if "n_layer" in model else []
    parts += [f"{k} {model[k]}" for k in ("d_model", "d_mlp", "vocab_size", "n_ctx") if k in model]
    sparsity = config.get("sparsity")
    if isinstance(sparsity, dict) and "enabled" in sparsity:
        parts.append(f"density {sparsity.get('density')}" if sparsity["enabled"] else "dense")
    if str(config.get("preset", "")).startswith("synth-"):  # circuit-engine synth: say it at once
        parts.append("SYNTHETIC: random weights, never trained (for benchmarks)")
    return ", ".join(parts) if parts else f"{len(model)} settings"


class RunBrowser(QWidget):
    """Bundled runs, recent runs and "Open folder..."; below, the current run's folder and config."""

    runActivated = Signal(str)  # a run folder or alias
    openFolderRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setObjectName("runList")
        self.list.itemActivated.connect(self._on_activated)
        self.list.itemClicked.connect(self._on_activated)
        self.open_button = QPushButton("Open folder…")
        self.open_button.clicked.connect(self.openFolderRequested)
        self.folder_label = QLabel("(none)")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_label.setWordWrap(True)
        self.summary_label = QLabel("(no run loaded)")
        self.summary_label.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Folder:", self.folder_label)
        form.addRow("Model:", self.summary_label)
        self.tree = QTreeWidget()
        self.tree.setObjectName("runConfigTree")
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Key", "Value"])
        self.tree.setUniformRowHeights(True)
        top = QWidget()
        top_box = QVBoxLayout(top)
        top_box.setContentsMargins(0, 0, 0, 0)
        top_box.addWidget(self.list, 1)
        top_box.addWidget(self.open_button)
        bottom = QWidget()
        bottom_box = QVBoxLayout(bottom)
        bottom_box.setContentsMargins(0, 0, 0, 0)
        bottom_box.addLayout(form)
        bottom_box.addWidget(self.tree, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setSizes([150, 200])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(split)

    def set_runs(self, bundled: list[tuple[str, str]], recent: list[str], current: str | None) -> None:
        """``bundled``: (alias, description); ``recent``: folders, newest first."""
        self.list.clear()
        for title, entries in (("Bundled", [(a, d) for a, d in bundled]),
                               ("Recent", [(p, Path(p).name) for p in recent])):
            header = QListWidgetItem(title.upper())
            header.setFlags(Qt.ItemFlag.NoItemFlags)
            header.setForeground(QColor(theme.MUTED))
            self.list.addItem(header)
            if not entries:
                empty = QListWidgetItem("   (none yet)" if title == "Recent" else "   (not installed)")
                empty.setFlags(Qt.ItemFlag.NoItemFlags)
                self.list.addItem(empty)
            for path, text in entries:
                item = QListWidgetItem(f"   {text}")
                item.setData(ROLE_PATH, path)
                item.setToolTip(path)
                if current is not None and path == current:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.list.addItem(item)

    def show_config(self, run_dir: Path, config: dict[str, Any]) -> None:
        self.folder_label.setText(str(run_dir))
        self.folder_label.setToolTip(str(run_dir))
        self.summary_label.setText(model_summary(config))
        self.tree.clear()
        fill_tree(self.tree, config)
        self.tree.expandToDepth(0)
        self.tree.resizeColumnToContents(0)

    def find_value(self, *path: str) -> str | None:
        """The value text at a key path, e.g. ``find_value("model", "n_layer")``; for tests."""
        items = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        item = None
        for key in path:
            item = next((it for it in items if it.text(0) == key), None)
            if item is None:
                return None
            items = [item.child(i) for i in range(item.childCount())]
        return item.text(1) if item is not None else None

    def _on_activated(self, item: QListWidgetItem) -> None:
        path = item.data(ROLE_PATH)
        if path:
            self.runActivated.emit(str(path))


class TaskPicker(QWidget):
    """Built-in tasks (● = has a circuit) and "Load task file..."."""

    taskActivated = Signal(str)
    taskFileRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setObjectName("taskList")
        self.list.itemClicked.connect(self._on_activated)
        self.list.itemActivated.connect(self._on_activated)
        self.description = QLabel("")
        self.description.setWordWrap(True)
        self.description.setStyleSheet(f"color: {theme.MUTED};")
        self.file_button = QPushButton("Load task file…")
        self.file_button.clicked.connect(self.taskFileRequested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.description)
        layout.addWidget(self.file_button)

    def set_tasks(self, tasks, current: str | None, current_description: str = "") -> None:
        self.list.clear()
        names = {t.name for t in tasks}
        entries = list(tasks)
        for t in entries:
            item = QListWidgetItem(("● " if t.has_circuit else "   ") + t.name)
            item.setData(ROLE_PATH, t.name)
            item.setToolTip(t.description + ("\n(has a circuit)" if t.has_circuit else "\n(no circuit yet)"))
            if t.has_circuit:
                item.setForeground(QColor(theme.TEXT))
            else:
                item.setForeground(QColor(theme.MUTED))
            self.list.addItem(item)
            if t.name == current:
                item.setSelected(True)
                self.list.setCurrentItem(item)
        if current is not None and current not in names:
            item = QListWidgetItem(f"● {current} (task file)")
            self.list.addItem(item)
            self.list.setCurrentItem(item)
        self.description.setText(f"<b>{current}</b>: {current_description}<br>● = has a circuit"
                                 if current else "")

    def _on_activated(self, item: QListWidgetItem) -> None:
        name = item.data(ROLE_PATH)
        if name:
            self.taskActivated.emit(str(name))


class LogPanel(QWidget):
    """Messages with a progress bar and a Cancel button for the running background job."""

    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QPlainTextEdit()
        self.text.setObjectName("logText")
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(2000)
        self.text.setFont(theme.mono_font(9))
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancelRequested)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        layout.addWidget(self.text, 1)
        layout.addLayout(row)
        self.mirror: Path | None = None  # tests and scripts: also append every line to this file

    @Slot(str)
    def log(self, message: str) -> None:
        self.text.appendPlainText(message)
        if self.mirror is not None:
            try:
                with open(self.mirror, "a", encoding="utf-8") as fh:
                    fh.write(message + "\n")
            except OSError:
                self.mirror = None

    def set_progress(self, label: str, done: float | None, busy: bool) -> None:
        """``done`` in [0, 1] or None for an indeterminate bar; ``busy`` enables Cancel."""
        if done is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * max(0.0, min(1.0, done))))
        self.progress.setFormat(label)
        self.cancel_button.setEnabled(busy)
