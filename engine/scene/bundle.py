"""Loading what the window shows for one run and task, as one immutable :class:`Bundle`.

:func:`load_bundle` runs in the ablation worker's thread (it imports the torch-using engine
modules there, inside the function, which keeps the first paint of the window fast) and returns the bundle together with a live
``Ablator`` that never leaves that thread. The bundle holds only plain data: paths, the frozen
config, a read-only Circuit, numpy arrays, graph layouts and the baseline metrics.

Handles a run without circuits (whole-model view, ``circuit`` is None), without an activation store
(``store_path`` is None) and bundled read-only runs (derived files live in ``derived``). With
``SetupSpec.checkpoint`` the run is loaded at that training step: the model graph, the circuit's
weights, the means and the Ablator all come from that checkpoint (circuit formation), and the
activation store (recorded from the final model) is not used.

Another task of the same run is quick (well under a second on the demo): the worker's
:class:`RunCache` keeps the model, its graph, the ablation means and the resample pool read from the
activation store (the slow part: a second or more per load); only the task is encoded again, with its
Ablator and baselines.
Used by the window (in its worker thread) and by ``circuit-engine export``. Knows nothing about Qt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.scene.layout import GraphData, ModelShape, build_graph

DEFAULT_TASK = "single_double_quote"
LABELS_FILE = "labels.json"
DAMAGED_SUFFIX = ".damaged"


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


@dataclass(frozen=True, eq=False)
class TaskView:
    """A task's held-out pairs as the window shows them. Row ``2i`` is pair ``i`` side A, ``2i+1`` side B."""

    task: str
    pairs: tuple  # (TaskPair, ...) as evaluated
    tokens: tuple  # (N,) tuples of display strings of each sequence's prompt tokens
    target: np.ndarray  # (N,) int64 correct next-token id
    foil: np.ndarray  # (N,) int64 the other side's target id
    target_str: tuple  # (N,) display strings of the targets
    node_values: dict  # site -> (N, width) float32: each node's activation at each prompt's last token
    embed: np.ndarray  # (N, d_resid) float32: the embedding of each prompt's last token
    unembed: np.ndarray  # (N, d_resid) float32: lm_head row of each target times the final norm gain


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
    task_view: TaskView
    means: dict  # site -> (width,) float32
    full: Any  # AblationResult of the full model
    circuit_result: Any  # AblationResult of the circuit alone (the rest ablated in its own mode: .circuit_mode), or None
    store_path: Path | None
    labels: dict
    notes: tuple[str, ...]
    resample: bool = False  # the Ablator has recorded activations for resample ablation
    verdict: dict | None = None  # the circuit's verdict (engine.pruning.verdict), from its file or its numbers
    problems: tuple[str, ...] = ()  # damaged files left aside (and kept): the window says so

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
    """The worker's memory of the last run it loaded (reused when only the task changes): the run,
    its whole-model graph, its means (numpy for the view, torch for the Ablator) and its resample
    pool, which is kept while the activation store file is unchanged."""

    def __init__(self) -> None:
        self.key: tuple[str, float, int | None] | None = None
        self.run: Any = None
        self.model_graph: GraphData | None = None
        self.means: dict | None = None
        self.ablation_means: dict | None = None  # site -> torch tensor, what ablated nodes take
        self.pool_key: tuple | None = None  # (store path, mtime, size, model hash) the pool was read from
        self.pool: Any = None  # site -> (n, width) tensor of recorded activations, or None

    def resample_pool(self, run) -> Any:
        """The run's resample pool (:func:`engine.ablation.setup.resample_pool`), read again only when
        the store file (or the model) changed."""
        from engine.ablation.setup import resample_pool
        from engine.store.activations import default_store_path

        path = default_store_path(run.path)
        try:
            st = path.stat()
            key = (str(path), st.st_mtime_ns, st.st_size, run.model_hash)
        except OSError:
            key = (str(path), None, None, run.model_hash)
        if key != self.pool_key:
            self.pool, self.pool_key = resample_pool(run), key
        return self.pool


def _pick_task(spec: SetupSpec, tasks: list[TaskInfo]):
    from engine.tasks.files import load_task_file
    from engine.tasks.lookup import get_task

    if spec.task_file:
        return load_task_file(Path(spec.task_file).expanduser())
    if spec.task:
        return get_task(spec.task)
    names = [t.name for t in tasks]
    with_circuit = [t.name for t in tasks if t.has_circuit]
    if DEFAULT_TASK in with_circuit or (not with_circuit and DEFAULT_TASK in names):
        return get_task(DEFAULT_TASK)
    return get_task((with_circuit or names)[0])


def read_config_json(config_file: Path) -> Any:
    """A run's ``config.json`` as parsed JSON, through the hardened reader (size, nesting depth and
    encoding limits; a folder in its place): the window shows it in the Runs dock before the worker has
    loaded anything. Any problem is a UserError naming the file."""
    from engine.fileio import read_json

    return read_json(Path(config_file), what="run config")


def load_labels(derived: Path, circuit, notes: list[str] | None = None) -> dict[str, str]:
    """Node labels: the circuit's own, overridden by the user's (``<derived>/labels.json``). An
    unreadable labels file is left as it is, with a sentence in ``notes`` saying so."""
    from engine.errors import UserError
    from engine.fileio import read_json

    labels = dict(circuit.labels) if circuit is not None else {}
    path = Path(derived) / LABELS_FILE
    if not path.exists():
        return labels
    try:
        data = read_json(path, what="labels file")
        if not isinstance(data, dict):
            raise UserError(f"labels file {path} is not a JSON object {{node id: label}}")
    except UserError as exc:
        if notes is not None:
            notes.append(f"{exc}. Your labels in it are not shown; the file is kept (the next label you set "
                         f"moves it aside to {LABELS_FILE}{DAMAGED_SUFFIX}).")
        return labels
    labels.update({str(k): str(v) for k, v in data.items()})
    return labels


def save_labels(derived: Path, labels: dict[str, str]) -> Path:
    """Write the user's labels to ``<derived>/labels.json`` atomically; an existing file that does not
    read as labels is kept, renamed to ``labels.json.damaged``, rather than overwritten."""
    from engine.errors import UserError
    from engine.fileio import atomic_write_json, read_json

    path = Path(derived) / LABELS_FILE
    if path.exists():
        try:
            if not isinstance(read_json(path, what="labels file"), dict):
                raise UserError("not an object")
        except UserError:
            path.replace(path.with_name(LABELS_FILE + DAMAGED_SUFFIX))
    atomic_write_json(path, {str(k): str(v) for k, v in sorted(labels.items())})
    return path


def _load_run(spec: SetupSpec, cache: RunCache, notes: list[str]):
    """The run (reused from ``cache`` while its folder, config and checkpoint are the same), its
    whole-model graph and node means."""
    from engine.ablation.means import load_means
    from engine.circuits.circuit import weight_edges
    from engine.paths import resolve_run
    from engine.runs import load_run

    run_dir = resolve_run(spec.run)
    config_file = Path(run_dir) / "config.json"
    key = (str(Path(run_dir).resolve()), config_file.stat().st_mtime if config_file.exists() else 0.0,
           spec.checkpoint)
    if cache.key != key:
        cache.key, cache.run, cache.model_graph, cache.means, cache.ablation_means = None, None, None, None, None
        run = load_run(run_dir, checkpoint=spec.checkpoint)
        edges = weight_edges(run.model)
        cache.model_graph = build_graph(ModelShape.from_config(run.config.model), None, edges.src, edges.dst,
                                        edges.weight)
        notes.append(f"loaded {run.path} ({cache.model_graph.n_nodes:,} nodes, "
                     f"{cache.model_graph.n_edges:,} nonzero weights)")
        cache.ablation_means = load_means(run, "mean")
        cache.means = {site: v.float().numpy().copy() for site, v in cache.ablation_means.items()}  # node_means
        cache.run, cache.key = run, key
    return cache.run


def _task_and_circuit(spec: SetupSpec, run) -> tuple[list[TaskInfo], Any, Path | None, Any]:
    """Every task (with whether it has a circuit), the chosen task, its circuit file and circuit."""
    from engine.circuits.circuit import list_circuits, load_circuit
    from engine.circuits.library import circuit_for_task, circuit_roots, find_circuit
    from engine.tasks.lookup import list_tasks

    with_circuit = {p.parent.name for p in list_circuits(*circuit_roots(run))}
    tasks = [TaskInfo(t.name, t.description, t.name in with_circuit) for t in list_tasks()]
    task = _pick_task(spec, tasks)
    circuit_path = find_circuit(run, spec.circuit) if spec.circuit else (
        circuit_for_task(run, task.name) if spec.checkpoint is None else None)
    circuit = load_circuit(circuit_path, run.model, run.model_hash) if circuit_path else None
    return tasks, task, circuit_path, circuit


def _task_view(run, task, enc, ablator) -> TaskView:
    """The encoded pairs as the window shows them, with what their last positions read and write (the
    node values recorded with the Ablator's full-model cache)."""
    from engine.ablation.setup import last_position_io

    embed, unembed = last_position_io(run, enc)
    values = ablator.clean_readout()
    from engine.runs import run_tokenizer

    tok = run_tokenizer(run)
    return TaskView(task=task.name, pairs=enc.pairs,
                    tokens=tuple(tuple(tok.token_str(int(i)) for i in row[:n]) for row, n in zip(enc.tokens, enc.lengths)),
                    target=enc.target.copy(), foil=enc.foil.copy(),
                    target_str=tuple(tok.token_str(int(i)) for i in enc.target),
                    node_values=values, embed=embed, unembed=unembed)


def load_bundle(spec: SetupSpec, cache: RunCache) -> tuple[Bundle, Any]:
    """Load (or reuse) the run, pick the task and its circuit, build the layouts, the Ablator and
    the baseline metrics. Raises engine UserError for anything the user can fix."""
    from engine.ablation.ablator import Ablator
    from engine.paths import derived_dir
    from engine.tasks.evaluate import task_data
    from engine.store.activations import default_store_path

    notes: list[str] = []
    problems: list[str] = []  # damaged files left aside: the window tells the user
    t0 = time.perf_counter()
    run = _load_run(spec, cache, notes)
    tasks, task, circuit_path, circuit = _task_and_circuit(spec, run)
    circuit_graph = None
    if circuit is not None:
        circuit_graph = build_graph(cache.model_graph.shape, [str(n) for n in circuit.nodes],
                                    circuit.edges.src, circuit.edges.dst, circuit.edges.weight,
                                    layout_ids=spec.layout_nodes)
    # engine.ablation.setup.run_ablator, with the means and the resample pool from the cache
    enc = task_data(run, task, spec.n_pairs, "val", 0)
    ablator = Ablator(run.model, enc, cache.ablation_means, circuit=circuit,
                      resample_pool=cache.resample_pool(run), seed=0)
    full = ablator.evaluate((), (), "mean", "full")
    view = _task_view(run, task, enc, ablator)
    circ_result = ablator.evaluate((), (), "mean", "circuit") if circuit is not None else None
    store = default_store_path(run.path)
    derived = derived_dir(run.path)
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
        labels=load_labels(derived, circuit, problems), problems=tuple(problems),
        notes=tuple(notes + [f"ready in {time.perf_counter() - t0:.2f} s"]),
        resample=getattr(ablator, "resample", None) is not None,
        verdict=_verdict(run, circuit))
    return bundle, ablator


def _verdict(run, circuit) -> dict | None:
    """The circuit's verdict: stored with it, or judged now from its numbers (older circuit files)."""
    if circuit is None:
        return None
    if isinstance(circuit.metrics.get("verdict"), dict):
        return circuit.metrics["verdict"]
    from engine.pruning.job import with_verdict

    judged = with_verdict(run.model, circuit).metrics["verdict"]
    return {**judged, "reasons": judged["reasons"] + ["(judged when loaded: the file predates verdicts; its mask "
                                                      "convergence was not recorded)"]}
