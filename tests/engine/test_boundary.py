"""The engine is headless and layered: importing every engine module loads no Qt, import-linter's
contracts hold (docs/architecture.md, "Layers"), and every module is classified for the app.

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
names = sorted(m.name for m in pkgutil.walk_packages(engine.__path__, prefix="engine.")
               if not m.name.endswith(".__main__"))  # __main__ runs the CLI
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


def _contract(name_start: str) -> dict:
    import tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"].startswith(name_start))


def _engine_modules() -> set[str]:
    """Every engine module and package, from the files on disk."""
    out = set()
    for p in (REPO / "engine").rglob("*.py"):
        parts = p.relative_to(REPO).with_suffix("").parts
        out.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out - {"engine", "engine.cli.__main__"}


def _covered(module: str, names: list[str]) -> bool:
    return any(module == n or module.startswith(n + ".") for n in names)


#: Engine modules the app may import directly: the facade, and modules that import no torch.
APP_MAY_IMPORT = ("engine.api", "engine.errors", "engine.sites", "engine.ablation.modes", "engine.allocator", "engine.scene")


def test_every_engine_module_is_either_open_to_the_app_or_forbidden() -> None:
    """A new engine module must be classified, or the app could import it unnoticed."""
    forbidden = _contract("The app talks to the engine")["forbidden_modules"]
    for module in sorted(_engine_modules()):
        allowed = _covered(module, list(APP_MAY_IMPORT))
        if module in ("engine.ablation",):  # a package holding both kinds; its modules are classified
            continue
        assert allowed != _covered(module, forbidden), f"{module}: allowed={allowed}, forbidden={not allowed}"


def test_what_the_app_may_import_loads_no_torch() -> None:
    """The app imports these at start-up, before its first paint; torch comes later, in a worker."""
    modules = sorted(m for m in _engine_modules() if _covered(m, list(APP_MAY_IMPORT)) and m != "engine.api")
    script = ("import importlib, sys\n"
              f"for m in {modules!r}: importlib.import_module(m)\n"
              "print('TORCH', 'torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "TORCH False" in proc.stdout, modules


def test_no_engine_module_imports_the_facade() -> None:
    sources = _contract("No engine module imports the facade")["source_modules"]
    for module in _engine_modules() - {"engine.api"}:
        assert _covered(module, sources), f"{module} is not covered by the no-facade contract"
