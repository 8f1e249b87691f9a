"""Modal dialogs, behind small functions so tests can replace them.

Every place in the app that would block on a modal dialog (an error box, a folder picker) calls one of
these functions through the module (``dialogs.show_error(...)``, never ``from .dialogs import
show_error``), so a test can ``monkeypatch.setattr(app.widgets.dialogs, "show_error", fake)`` and run without
a dialog ever opening. This module knows nothing about runs, circuits or the engine.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

#: How long an error stays in the status bar (ms): the dialog or the Log dock keeps the details.
STATUS_ERROR_MS = 10_000


def show_error(parent: QWidget | None, title: str, text: str) -> None:
    """Show a modal error box with ``title`` and ``text``; returns when the user closes it."""
    QMessageBox.critical(parent, title, text)


def show_warning(parent: QWidget | None, title: str, text: str) -> None:
    """Show a modal warning box (something was done, but not all of it); returns when it is closed."""
    QMessageBox.warning(parent, title, text)


def ask_run_dir(parent: QWidget | None, start_dir: str = "") -> Path | None:
    """Ask the user for a run folder; return it, or ``None`` if the dialog was cancelled."""
    chosen = QFileDialog.getExistingDirectory(parent, "Open run folder", start_dir)
    return Path(chosen) if chosen else None


def ask_task_file(parent: QWidget | None, start_dir: str = "") -> Path | None:
    """Ask the user for a task file (JSON); return it, or ``None`` if the dialog was cancelled."""
    chosen, _ = QFileDialog.getOpenFileName(parent, "Load task file", start_dir, "Task files (*.json)")
    return Path(chosen) if chosen else None


def ask_open_session(parent: QWidget | None, start_dir: str = "") -> Path | None:
    """Ask for a session file to open; return it, or ``None`` if the dialog was cancelled."""
    chosen, _ = QFileDialog.getOpenFileName(parent, "Open session", start_dir, "Sessions (*.json)")
    return Path(chosen) if chosen else None


def ask_save_session(parent: QWidget | None, start_path: str = "") -> Path | None:
    """Ask where to save a session; return the path, or ``None`` if the dialog was cancelled."""
    chosen, _ = QFileDialog.getSaveFileName(parent, "Save session", start_path, "Sessions (*.json)")
    return Path(chosen) if chosen else None


def ask_export(parent: QWidget | None, start_path: Path, size: tuple[int, int]):
    """Ask for an export's format, file and PNG scale (:class:`app.widgets.export_dialog.ExportDialog`);
    return an :class:`app.widgets.export_dialog.ExportChoice`, or ``None`` if the dialog was cancelled."""
    from app.widgets.export_dialog import ExportDialog

    dialog = ExportDialog(parent, start_path, size)
    return dialog.choice() if dialog.exec() else None


def ask_import(parent: QWidget | None, start_dir: str = ""):
    """Ask for an OpenAI model to import (:class:`app.widgets.import_dialog.ImportDialog`); return an
    :class:`app.widgets.import_dialog.ImportChoice`, or ``None`` if the dialog was cancelled."""
    from app.widgets.import_dialog import ImportDialog

    dialog = ImportDialog(parent, start_dir)
    return dialog.choice() if dialog.exec() else None


def ask_folder(parent: QWidget | None, title: str, start_dir: str = "") -> Path | None:
    """Ask the user for a folder (``title`` says which); return it, or ``None`` if cancelled."""
    chosen = QFileDialog.getExistingDirectory(parent, title, start_dir)
    return Path(chosen) if chosen else None


def ask_yes_no(parent: QWidget | None, title: str, text: str) -> bool:
    """Ask a yes/no question (No is the default button); return whether the user said yes."""
    answer = QMessageBox.question(parent, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes
