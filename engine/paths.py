"""Where things live: run names (``demo``, ``demo-dense``), the bundled resources, and the per-user
data folder for everything derived from a read-only run.

A bundled or otherwise read-only run (an installed package may not be writable) never gets files
written into it: ablation means, circuits, activation stores and sessions derived from it go to
``<data dir>/runs/<name>-<hash>/``. The data dir is ``$CIRCUIT_INSPECTOR_DATA`` if set, else
``$XDG_DATA_HOME/circuit-inspector`` (default ``~/.local/share/circuit-inspector``).
Knows nothing about models or Qt.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from engine.errors import UserError

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEMO_DIR = RESOURCES / "demo"
RUN_ALIASES = {"demo": DEMO_DIR / "sparse", "demo-dense": DEMO_DIR / "dense"}


def resolve_run(name_or_path: str | Path) -> Path:
    """``demo`` / ``demo-dense`` -> the bundled runs; anything else is a path."""
    key = str(name_or_path)
    if key in RUN_ALIASES and not Path(key).exists():
        path = RUN_ALIASES[key]
        if not (path / "config.json").exists():
            raise UserError(f"the bundled {key} model is missing from {path}; reinstall circuit-inspector "
                            f"or train one with `circuit-engine train --preset demo --out DIR`")
        return path
    return Path(name_or_path).expanduser()


def run_name(run_dir: Path | str) -> str:
    """How to name a run in files that should survive a reinstall: ``demo`` / ``demo-dense`` for the
    bundled runs, else the absolute path."""
    path = Path(run_dir).resolve()
    return next((alias for alias, p in RUN_ALIASES.items() if p.resolve() == path), str(path))


def data_dir() -> Path:
    env = os.environ.get("CIRCUIT_INSPECTOR_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "circuit-inspector"


def is_bundled(run_dir: Path) -> bool:
    try:
        Path(run_dir).resolve().relative_to(RESOURCES.resolve())
        return True
    except ValueError:
        return False


def derived_dir(run_dir: Path) -> Path:
    """Folder for files derived from a run: the run itself when it is ours and writable, else a
    per-user folder keyed by the run's path."""
    run_dir = Path(run_dir).resolve()
    if not is_bundled(run_dir) and os.access(run_dir, os.W_OK):
        return run_dir
    tag = hashlib.blake2b(str(run_dir).encode(), digest_size=4).hexdigest()
    alias = run_name(run_dir)
    name = alias if alias in RUN_ALIASES else run_dir.name
    return data_dir() / "runs" / f"{name}-{tag}"
