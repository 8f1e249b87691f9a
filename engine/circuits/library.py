"""Where a run's circuits live and how a name finds one: the run folder itself and, for a read-only
or bundled run, its per-user derived folder (``engine.paths.derived_dir``). A circuit is named by
its file (absolute, or relative to those folders, as sessions store them) or by its task
(``circuits/<task>/mean.json`` preferred). Knows nothing about pruning or ablation.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine.circuits.circuit import Circuit, CircuitEntry, index_circuits, list_circuits
from engine.errors import UserError
from engine.paths import derived_dir, resolve_run
from engine.tasks.files import load_task_file
from engine.tasks.lookup import get_task
from engine.tasks.types import Task


def circuit_roots(run: Any) -> list[Path]:
    """The folders a run's circuits live in: the run itself and, if elsewhere, its derived folder.
    ``run`` is anything with a ``path`` (a LoadedRun)."""
    roots = [run.path]
    d = derived_dir(run.path)
    return roots + ([d] if d != Path(run.path).resolve() else [])


def find_circuit(run: Any, spec: str | Path) -> Path:
    """A circuit file path, or a task name -> that task's circuit (``mean.json`` preferred)."""
    p = Path(spec).expanduser()
    if p.suffix == ".json" or p.exists():
        if not p.is_absolute():  # relative to the run (as sessions store them) first, then to the current folder
            inside = [root / p for root in circuit_roots(run) if (root / p).exists()]
            if inside:
                return inside[0]
        if p.exists():
            return p
        raise UserError(f"circuit file not found: {p}")
    found = [c for c in list_circuits(*circuit_roots(run)) if c.parent.name == str(spec)]
    if not found:
        raise UserError(f"no circuit for task {spec!r} in {run.path}; make one with "
                        f"`circuit-engine prune {run.path} --task {spec}`")
    preferred = [c for c in found if c.stem == "mean"]
    return (preferred or found)[-1]


def circuit_for_task(run: Any, task: str) -> Path | None:
    """The task's circuit file (``mean.json`` preferred), or None when the task has none yet."""
    try:
        return find_circuit(run, task)
    except UserError:
        return None


def circuit_index(run_dir: Path | str) -> list[CircuitEntry]:
    """Every circuit saved for a run (bundled and derived folders); unreadable files are skipped."""
    return index_circuits(*circuit_roots(SimpleNamespace(path=resolve_run(run_dir))))


def task_of_circuit(circuit: Circuit) -> Task:
    """The task a circuit was pruned for: its task file when it came from one, else the built-in task."""
    src = circuit.settings.get("task_file")
    return load_task_file(Path(src)) if src else get_task(circuit.task)
