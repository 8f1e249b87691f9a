"""The engine is headless: importing every engine module loads no Qt, and import-linter agrees.

pytest-qt loads Qt into the test process itself, so the import check runs in a fresh subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Imports every module of the engine package (found with pkgutil, so new modules are covered
# without editing this test), then prints the Qt-ish modules that got loaded.
IMPORT_ALL_ENGINE = r"""
import importlib, pkgutil, sys
import engine
names = sorted(m.name for m in pkgutil.walk_packages(engine.__path__, prefix="engine."))
for name in names:
    importlib.import_module(name)
print("MODULES", names)
print("QT", [m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph", "app")])
"""


def test_importing_every_engine_module_loads_no_qt() -> None:
    env = dict(os.environ)
    env.pop("PYTEST_QT_API", None)
    proc = subprocess.run([sys.executable, "-c", IMPORT_ALL_ENGINE], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"importing the engine failed:\n{proc.stderr}"
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines()
                 if line.startswith(("MODULES ", "QT ")))
    assert "engine.errors" in lines["MODULES"]
    assert lines["QT"] == "[]", f"engine imported Qt/pyqtgraph/app modules: {lines['QT']}"


def _lint_imports() -> str | None:
    beside_python = Path(sys.executable).with_name("lint-imports")
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("lint-imports")


def test_import_linter_contracts_hold() -> None:
    exe = _lint_imports()
    if exe is None:
        pytest.skip("lint-imports (import-linter) is not installed")
    proc = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"lint-imports failed:\n{proc.stdout}\n{proc.stderr}"


def test_the_app_contract_forbids_every_engine_module_but_api_and_errors():
    """A new engine module must join the forbidden list, or the app could import it unnoticed."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    contracts = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    app_contract = next(c for c in contracts if c["source_modules"] == ["app"])
    modules = {f"engine.{p.stem}" for p in (root / "engine").glob("*.py") if p.stem != "__init__"}
    assert set(app_contract["forbidden_modules"]) == modules - {"engine.api", "engine.errors"}
