"""Two circuits of one run, found by name or file, and their diff (:mod:`engine.scene.focus` draws it).

A run's circuits for a task are ``circuits/<task>/<name>.json`` (``mean``, ``zero``, an imported
one...) and the circuit formation's ``circuits/<task>/formation/step_NNNNNNN.json``, in the run folder
and its per-user derived folder (:func:`engine.circuits.library.circuit_roots`). :func:`circuit_names`
lists them as ``mean``, ``zero``, ``formation/step_0001000``; :func:`resolve_circuit` takes such a name
(``step_0001000`` alone too) or a file. A circuit fits the run when every node is one of the model's
(a formation step's circuit was pruned at another checkpoint, so its model hash is not checked; its
weights are that checkpoint's values).

Used by ``circuit-engine diff`` (:func:`run_diff`), the exports' ``--diff`` option and the window's
Circuits > Compare with circuit… (:func:`partner_view`). Imports of the circuit reader (which loads
torch) happen inside the functions, so the app may import this module before torch
(docs/architecture.md, "Layers").
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine.errors import UserError
from engine.scene.focus import DiffView, diff_view
from engine.scene.layout import GraphData, ModelShape, all_node_ids

FORMATION = "formation"


def _roots(run_dir: Path) -> list[Path]:
    from engine.circuits.library import circuit_roots

    return circuit_roots(SimpleNamespace(path=Path(run_dir)))


def circuit_names(run_dir: Path | str, task: str) -> list[tuple[str, Path]]:
    """(name, file) of every circuit of ``task`` in the run (see the module docstring), in name order;
    a name in both folders is the run folder's."""
    found: dict[str, Path] = {}
    for root in _roots(Path(run_dir)):
        folder = Path(root) / "circuits" / task
        files = [(p.stem, p) for p in sorted(folder.glob("*.json"))]
        files += [(f"{FORMATION}/{p.stem}", p) for p in sorted((folder / FORMATION).glob("step_*.json"))]
        for name, path in files:
            found.setdefault(name, path)
    return sorted(found.items())


def display_name(path: Path | str) -> str:
    """A circuit's short name: its file name (``mean``), ``step 1000`` for a formation step."""
    path = Path(path)
    if path.parent.name == FORMATION and path.stem.startswith("step_") and path.stem[5:].isdigit():
        return f"step {int(path.stem[5:])}"
    return path.stem


def resolve_circuit(run_dir: Path | str, task: str | None, ref: str) -> Path:
    """A circuit file of the run: ``ref`` is a file (absolute, or relative to the run's folders, then
    to the current folder) or the name of one of ``task``'s circuits; UserError naming the others."""
    from engine.circuits.library import find_circuit

    path = Path(ref).expanduser()
    if path.suffix == ".json" or path.exists():
        return find_circuit(SimpleNamespace(path=Path(run_dir)), ref)
    if task is None:
        raise UserError(f"{ref!r} is not a circuit file; to name a circuit of the run give its task (--task T)")
    names = circuit_names(run_dir, task)
    for name, file in names:
        if ref in (name, name.rpartition("/")[2]):
            return file
    known = ", ".join(n for n, _ in names) or "none yet (make one with `circuit-engine prune`)"
    raise UserError(f"no circuit {ref!r} for task {task} in {run_dir}; its circuits: {known}")


def load_fitting(path: Path | str, model_ids: set[str] | dict[str, int]) -> Any:
    """Read a circuit file and check that every node is one of the model's (``model_ids``)."""
    from engine.circuits.circuit import load_circuit

    circuit = load_circuit(Path(path))
    bad = [str(n) for n in circuit.nodes if str(n) not in model_ids]
    if bad:
        raise UserError(f"{path} was made for another model: it has the node(s) {', '.join(bad[:3])}, which this "
                        "model does not have")
    return circuit


def names_of(a_path: Path | str, b_path: Path | str) -> tuple[str, str]:
    """Display names of two circuits, told apart when their files share a name."""
    a, b = display_name(a_path), display_name(b_path)
    if a == b:  # mean.json of two tasks: name their folders
        a, b = (f"{Path(p).parent.name}/{Path(p).stem}" for p in (a_path, b_path))
    return (a, b) if a != b else (f"{a} (A)", f"{b} (B)")


def run_diff(run: str | Path, task: str | None, a: str, b: str) -> dict[str, Any]:
    """``circuit-engine diff``: circuits ``a`` and ``b`` of ``run`` compared (names or files)."""
    from engine.config import load_run_config
    from engine.runs import check_run_dir

    run_dir = check_run_dir(run)
    shape = ModelShape.from_config(load_run_config(run_dir / "config.json").model)
    ids = set(all_node_ids(shape))
    paths = [resolve_circuit(run_dir, task, ref) for ref in (a, b)]
    ca, cb = (load_fitting(p, ids) for p in paths)
    name_a, name_b = names_of(*paths)
    view = diff_view(shape, ca, cb, name_a, name_b, partner=str(paths[1]))
    lists = {k: v for k, v in view.diff.to_dict().items() if k not in ("a", "b")}
    return {"run": str(run_dir), "task": task or ca.task,
            "a": {"name": name_a, "path": str(paths[0]), "task": ca.task, "nodes": ca.n_nodes, "weights": ca.n_edges},
            "b": {"name": name_b, "path": str(paths[1]), "task": cb.task, "nodes": cb.n_nodes, "weights": cb.n_edges},
            "summary": view.header(), **lists}


def partner_view(model_graph: GraphData, circuit: Any, circuit_path: Path | str, run_dir: Path | str, task: str,
                 ref: str) -> DiffView:
    """The loaded ``circuit`` (A, from ``circuit_path``) against the run's circuit ``ref`` (B)."""
    path = resolve_circuit(run_dir, task, ref)
    if Path(path).resolve() == Path(circuit_path).resolve():
        raise UserError(f"{display_name(path)} is the circuit on screen; choose another circuit to compare with")
    partner = load_fitting(path, model_graph.index)
    name_a, name_b = names_of(circuit_path, path)
    return diff_view(model_graph.shape, circuit, partner, name_a, name_b, partner=str(path))


def bundle_partner(bundle, ref: str) -> DiffView:
    """:func:`partner_view` for a loaded :class:`engine.scene.bundle.Bundle` (the window, the exports)."""
    if bundle.circuit is None:
        raise UserError(f"task {bundle.task.name} has no circuit in {bundle.run_path} to compare with {ref}; make "
                        f"one with `circuit-engine prune {bundle.run_path} --task {bundle.task.name}`")
    return partner_view(bundle.model_graph, bundle.circuit, bundle.circuit_path, bundle.run_path, bundle.task.name,
                        ref)
