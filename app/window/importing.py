"""File > Import OpenAI model…: ask for the folders (:func:`app.widgets.dialogs.ask_import`), run
the import as a background job (progress and messages in the Log dock, cancellable there), then
open the new run with its first circuit's task. A bad folder or file is a dialog naming it; nothing
is written then (the engine writes the run folder only when the model and every circuit file have
been read). Gets the parts it works with, not the window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QWidget

from app.widgets import dialogs

JOB_NAME = "import"


class OpenAIImport(QObject):
    """See the module docstring. ``open_run(path)`` opens a run folder in the window."""

    def __init__(self, *, jobs, log: Callable[[str], None], report_error: Callable[[str, str], None],
                 open_run: Callable[[str], object], last_open_dir: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._jobs = jobs
        self._log = log
        self._report = report_error
        self._open_run = open_run
        self._last_open_dir = last_open_dir
        self._parent = parent
        jobs.finished.connect(self._on_finished)

    @Slot()
    def ask_and_start(self) -> None:
        choice = dialogs.ask_import(self._parent, self._last_open_dir())
        if choice is not None:
            self.start(choice)

    def start(self, choice) -> bool:
        """Start importing ``choice`` (an :class:`app.widgets.import_dialog.ImportChoice`)."""
        from engine import api

        def job():
            return api.import_openai_job(choice.model_dir, choice.out, choice.tokenizer_dir, choice.circuits_dir)

        try:
            self._jobs.start(JOB_NAME, job)
        except RuntimeError as exc:
            self._report("A job is running", str(exc))
            return False
        self._log(f"importing {choice.model_dir} into {choice.out}")
        return True

    @Slot(object)
    def _on_finished(self, outcome) -> None:
        if outcome.name != JOB_NAME or outcome.status != "done":
            return  # a failure is reported by the window controller like any job's
        result = outcome.result or {}
        circuits = result.get("circuits") or []
        self._log(f"imported {result.get('run')}: {result.get('n_layer')} layers, "
                  f"{result.get('nonzero_parameters', 0):,} nonzero weights, {len(circuits)} circuit(s)")
        self._open_run(str(Path(result["run"])))
