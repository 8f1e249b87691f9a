"""Run names and where derived files go: the bundled runs are named ``demo`` / ``demo-dense`` in files
that should outlive a reinstall, their derived files go to the per-user data folder, and a circuit
path relative to a run (as sessions store it) is found in the run's folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import api
from engine.errors import UserError
from engine.paths import DEMO_DIR, derived_dir, resolve_run, run_name


def test_bundled_runs_are_named_by_alias_and_others_by_absolute_path(tmp_path: Path) -> None:
    assert resolve_run("demo") == DEMO_DIR / "sparse" and resolve_run("demo-dense") == DEMO_DIR / "dense"
    assert run_name(DEMO_DIR / "sparse") == "demo" and run_name(DEMO_DIR / "dense") == "demo-dense"
    assert run_name(DEMO_DIR / "sparse" / ".." / "dense") == "demo-dense"  # however the path is spelled
    assert run_name(tmp_path / "run") == str((tmp_path / "run").resolve())


def test_derived_files_of_the_bundled_run_go_to_the_data_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CIRCUIT_INSPECTOR_DATA", str(tmp_path / "data"))
    d = derived_dir(DEMO_DIR / "sparse")
    assert d.parent == tmp_path / "data" / "runs" and d.name.startswith("demo-")
    assert derived_dir(DEMO_DIR / "dense").name.startswith("demo-dense-")
    own = tmp_path / "mine"
    own.mkdir()
    assert derived_dir(own) == own.resolve()  # a writable run of one's own keeps its files


def test_a_circuit_path_relative_to_the_run_is_found_in_its_folders(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CIRCUIT_INSPECTOR_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # not where the bundle is
    run = api.load_run("demo")
    rel = "circuits/single_double_quote/mean.json"
    assert api.find_circuit(run, rel) == run.path / rel
    user = derived_dir(run.path) / "circuits" / "mine" / "mean.json"  # one the user pruned
    user.parent.mkdir(parents=True)
    user.write_text("{}")
    assert api.find_circuit(run, "circuits/mine/mean.json") == user
    with pytest.raises(UserError, match="circuit file not found: circuits/none/mean.json"):
        api.find_circuit(run, "circuits/none/mean.json")
    decoy = tmp_path / rel  # a file of the same relative path in the current folder: the run's comes first
    decoy.parent.mkdir(parents=True)
    decoy.write_text("{}")
    assert api.find_circuit(run, rel) == run.path / rel
