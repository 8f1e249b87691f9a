"""Run folders as the window sees them before the engine does, and what the window remembers.

:func:`read_run_config` checks a folder and reads its ``config.json`` at once (the Runs dock shows it
before the worker has loaded anything), raising :class:`RunDirError` with a message that says what to
do. :class:`RecentRuns` keeps the recently opened runs and the last folder in QSettings (nothing, for
a window that does not persist its settings); :func:`restore_layout` and :func:`save_layout` keep the
window's geometry and docks. ``config.json`` is read by the engine's hardened JSON reader (through
:func:`engine.scene.bundle.read_config_json`, which imports no torch). Knows nothing about threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow

from engine.errors import UserError
from engine.scene.bundle import read_config_json

SETTINGS_ORG = "CircuitInspector"
SETTINGS_APP = "CircuitInspector"
CONFIG_FILE = "config.json"
BUNDLED = [("demo", "demo (sparse, bundled)"), ("demo-dense", "demo-dense (dense twin, bundled)")]
MAX_RECENT = 8


class RunDirError(ValueError):
    """A folder that cannot be opened as a run; the message says why and what to do."""


def app_settings() -> QSettings:
    """The app's persistent settings (tests redirect them with ``QSettings.setPath``)."""
    return QSettings(SETTINGS_ORG, SETTINGS_APP)


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """Read ``run_dir/config.json`` as a JSON object; raise :class:`RunDirError` if that fails."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunDirError(f"The run folder {run_dir} does not exist.")
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is a file, not a run folder. Choose the folder that holds {CONFIG_FILE}.")
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise RunDirError(f"{run_dir} has no {CONFIG_FILE}, so it is not a run folder. "
                          "Choose a folder created by training (File > Train a model…, or circuit-engine train).")
    try:
        config = read_config_json(config_path)  # the engine's hardened reader: encoding, depth, size
    except UserError as exc:
        raise RunDirError(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None
    if not isinstance(config, dict):
        raise RunDirError(f"{config_path} must hold a JSON object, not a {type(config).__name__}.")
    return config


class RecentRuns:
    """The recently opened run folders (newest first) and the folder file dialogs start in.
    ``persist=False`` (screenshots) reads and writes nothing."""

    def __init__(self, persist: bool) -> None:
        self.persist = persist

    def runs(self) -> list[str]:
        if not self.persist:
            return []
        value = app_settings().value("recent_runs", [])
        return [str(v) for v in (value if isinstance(value, list) else [value] if value else [])]

    def remember(self, path: Path) -> None:
        """Put ``path`` first (bundled runs are not remembered)."""
        if not self.persist or path.parent.parent.name == "resources":
            return
        recent = [str(path)] + [r for r in self.runs() if r != str(path)]
        settings = app_settings()
        settings.setValue("recent_runs", recent[:MAX_RECENT])
        settings.setValue("last_open_dir", str(path.parent))

    def last_open_dir(self) -> str:
        """The folder of the last run opened, else the home folder."""
        value = app_settings().value("last_open_dir", "") if self.persist else ""
        return str(value) if value else str(Path.home())


def fit_to_screen(window: QMainWindow) -> None:
    """Shrink the window into 90% of its screen (if it is larger)."""
    screen = window.screen()
    if screen is not None:
        avail = screen.availableGeometry()
        window.resize(min(window.width(), int(avail.width() * 0.9)), min(window.height(), int(avail.height() * 0.9)))


def restore_layout(window: QMainWindow) -> None:
    """Put back the window's saved geometry and dock layout (without saved ones the window keeps its
    first-start layout)."""
    settings = app_settings()
    geometry = settings.value("main_window/geometry")
    if isinstance(geometry, QByteArray) and not geometry.isEmpty():
        window.restoreGeometry(geometry)
    state = settings.value("main_window/state")
    if isinstance(state, QByteArray) and not state.isEmpty():
        window.restoreState(state)


def save_layout(window: QMainWindow) -> None:
    """Save the window's geometry and dock layout for the next start."""
    settings = app_settings()
    settings.setValue("main_window/geometry", window.saveGeometry())
    settings.setValue("main_window/state", window.saveState())
    settings.sync()
