"""Loading what the window shows for one run and task, as one immutable :class:`Bundle`.

:func:`load_bundle` runs in the ablation worker's thread (it imports ``engine.api`` and so torch,
which keeps the first paint of the window fast) and returns the bundle together with a live
``Ablator`` that never leaves that thread. The bundle holds only plain data: paths, the frozen
config, a read-only Circuit, numpy arrays, graph layouts and the baseline metrics.

Handles a run without circuits (whole-model view, ``circuit`` is None), without an activation store
(``store_path`` is None) and bundled read-only runs (derived files live in ``derived``). With
``SetupSpec.checkpoint`` the run is loaded at that training step: the model graph, the circuit's
weights, the means and the Ablator all come from that checkpoint (circuit formation), and the
activation store (recorded from the final model) is not used.
Knows nothing about Qt widgets.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.scene.layout import GraphData, ModelShape, build_graph

DEFAULT_TASK = "single_double_quote"
LABELS_FILE = "labels.json"


@dataclass(frozen=True)
class SetupSpec:
    """What to load: a run (folder or alias), a task (built-in name or task file), a circuit file."""

    run: str
    task: str | None = None
    task_file: str | None = None
    circuit: str | None = None
    n_pairs: int = 24
    generation: int = 0
    checkpoint: int | None = None  # a training step: load RUN/checkpoints/step_N instead of the final model
    layout_nodes: tuple[str, ...] | None = None  # lay the circuit out in this node set's frame (formation)


@dataclass(frozen=True)
class TaskInfo:
    name: str
    description: str
    has_circuit: bool


@dataclass(frozen=True, eq=False)
class Bundle:
    """Everything the window shows for one run and task. Immutable."""

    spec: SetupSpec
    run_path: Path
    config: Any  # RunConfig (frozen dataclass)
    config_dict: dict
    model_hash: str
    derived: Path
    tasks: tuple[TaskInfo, ...]
    task: Any  # engine Task (frozen)
    circuit: Any  # Circuit | None
    circuit_path: Path | None
    model_graph: GraphData
    circuit_graph: GraphData | None
    task_view: Any  # engine.api.TaskView
    means: dict  # site -> (width,) float32
    full: Any  # AblationResult of the full model
    circuit_result: Any  # AblationResult of the circuit alone, or None
    store_path: Path | None
    labels: dict
    notes: tuple[str, ...]
    resample: bool = False  # the Ablator has recorded activations for resample ablation

    @property
    def shape(self) -> ModelShape:
        return self.model_graph.shape

    @property
    def run_name(self) -> str:
        """A short name: the folder's, or "demo" / "demo-dense" for the bundled runs."""
        if self.run_path.parent.name == "demo" and self.run_path.parent.parent.name == "resources":
            return "demo" if self.run_path.name == "sparse" else f"demo-{self.run_path.name}"
        return self.run_path.name


class RunCache:
    """The worker's memory of the last run it loaded (reused when only the task changes)."""

    def __init__(self) -> None:
        self.key: tuple[str, float, int | None] | None = None
        self.run: Any = None
        self.model_graph: GraphData | None = None
        self.means: dict | None = None


def _pick_task(api, spec: SetupSpec, tasks: list[TaskInfo]):
    if spec.task_file:
        return api.load_task_file(Path(spec.task_file).expanduser())
    if spec.task:
        return api.get_task(spec.task)
    names = [t.name for t in tasks]
    with_circuit = [t.name for t in tasks if t.has_circuit]
    if DEFAULT_TASK in with_circuit or (not with_circuit and DEFAULT_TASK in names):
        return api.get_task(DEFAULT_TASK)
    return api.get_task((with_circuit or names)[0])


def load_labels(derived: Path, circuit) -> dict[str, str]:
    """Node labels: the circuit's own, overridden by the user's (``<derived>/labels.json``)."""
    labels = dict(circuit.labels) if circuit is not None else {}
    path = Path(derived) / LABELS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        labels.update({str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {})
    except (OSError, ValueError):
        pass
    return labels


def load_bundle(spec: SetupSpec, cache: RunCache) -> tuple[Bundle, Any]:
    """Load (or reuse) the run, pick the task and its circuit, build the layouts, the Ablator and
    the baseline metrics. Raises engine UserError for anything the user can fix."""
    from engine import api

    notes: list[str] = []
    t0 = time.perf_counter()
    run_dir = api.resolve_run(spec.run)
    config_file = Path(run_dir) / "config.json"
    key = (str(Path(run_dir).resolve()), config_file.stat().st_mtime if config_file.exists() else 0.0,
           spec.checkpoint)
    if cache.key != key:
        cache.key, cache.run, cache.model_graph, cache.means = None, None, None, None
        run = api.load_run(run_dir, checkpoint=spec.checkpoint)
        shape = ModelShape.from_config(run.config.model)
        edges = api.weight_edges(run.model)
        cache.model_graph = build_graph(shape, None, edges.src, edges.dst, edges.weight)
        notes.append(f"loaded {run.path} ({cache.model_graph.n_nodes:,} nodes, "
                     f"{cache.model_graph.n_edges:,} nonzero weights)")
        cache.means = api.node_means(run)
        cache.run, cache.key = run, key
    run = cache.run
    circuit_paths = api.list_circuits(*api.circuit_roots(run))
    with_circuit = {p.parent.name for p in circuit_paths}
    tasks = [TaskInfo(t.name, t.description, t.name in with_circuit) for t in api.list_tasks()]
    task = _pick_task(api, spec, tasks)
    circuit_path = api.find_circuit(run, spec.circuit) if spec.circuit else (
        api.circuit_for_task(run, task.name) if spec.checkpoint is None else None)
    circuit = api.load_circuit(circuit_path, run.model, run.model_hash) if circuit_path else None
    circuit_graph = None
    if circuit is not None:
        circuit_graph = build_graph(cache.model_graph.shape, [str(n) for n in circuit.nodes],
                                    circuit.edges.src, circuit.edges.dst, circuit.edges.weight,
                                    layout_ids=spec.layout_nodes)
    ablator, view = api.app_task_setup(run, task, circuit, n_pairs=spec.n_pairs)
    full = ablator.evaluate((), (), "mean", "full")
    circ_result = ablator.evaluate((), (), "mean", "circuit") if circuit is not None else None
    store = api.default_store_path(run.path)
    derived = api.derived_dir(run.path)
    if spec.checkpoint is not None:
        notes.append(f"checkpoint at step {spec.checkpoint} (not the final model)")
    notes.append(f"task {task.name}: {view.target.shape[0] // 2} held-out pairs; "
                 + (f"circuit {circuit_path.name} ({circuit.n_nodes} nodes, {circuit.n_edges} edges)"
                    if circuit is not None else "no circuit yet"))
    bundle = Bundle(
        spec=spec, run_path=Path(run.path), config=run.config, config_dict=run.config.to_dict(),
        model_hash=run.model_hash, derived=Path(derived), tasks=tuple(tasks), task=task, circuit=circuit,
        circuit_path=circuit_path, model_graph=cache.model_graph, circuit_graph=circuit_graph,
        task_view=view, means=cache.means, full=full, circuit_result=circ_result,
        store_path=store if store.exists() and spec.checkpoint is None else None,  # recorded from the final model
        labels=load_labels(derived, circuit),
        notes=tuple(notes + [f"ready in {time.perf_counter() - t0:.2f} s"]),
        resample=getattr(ablator, "resample", None) is not None)
    return bundle, ablator
