"""Node effects on a task, ranked: which nodes matter most (issue 18, "Node effects").

* **A circuit, exact** (:func:`rank_circuit`): every circuit node ablated alone on top of the circuit
  alone (everything outside it ablated), with the live :class:`~engine.ablation.ablator.Ablator`, so
  each number is what a click in the app shows (computed packed and batched,
  :mod:`engine.ablation.scan`; ``reference=True``: one evaluation per node). Per node: the change in held-out task loss and
  accuracy, the mean |change| of the per-sequence logit difference, and ``no_effect`` when no
  sequence's logit difference moves by :data:`NO_EFFECT_TOL` or more.
* **The whole model, estimated** (:func:`rank_whole_model`): attribution patching. Every site gets a
  keep mask ``m`` of ones that requires a gradient; the site's activation becomes
  ``x * m + v * (1 - m)`` (the ablation hook, equal to ``x`` at ``m = 1``). One forward and one backward
  over the held-out pairs give ``dL/dm_i = sum over positions of dL/dy_i * (x_i - v_i)`` (the task loss
  ``L`` is already a mean over sequences), and ablating node ``i`` (``m_i: 1 -> 0``) changes ``L`` by about
  ``-dL/dm_i`` (:func:`attribution_estimates`). The nodes with the largest |estimate| are then
  checked exactly with the Ablator and the Spearman rank correlation of estimate and exact change
  over them is reported.

Each is also a generator of :class:`RankEvent` (:func:`rank_job`: the CLI and the app's Node effects
dock; closing it stops between forwards). Headless and print-free: the CLI (``circuit-engine rank``),
``engine.api`` and the app show what these return.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Generator, Iterable, Sequence

import numpy as np
import torch

from engine.ablation.ablator import CHUNK, AblationResult, Ablator
from engine.ablation.core import logits_from, mask_hooks
from engine.ablation.modes import PRUNE_MODES, circuit_mode_for
from engine.ablation.scan import scan
from engine.ablation.setup import run_ablator
from engine.jobs import run_to_end
from engine.circuits.circuit import load_circuit
from engine.circuits.library import circuit_for_task, find_circuit
from engine.errors import UserError
from engine.runs import load_run
from engine.sites import NodeId, all_sites, intervene, site_width
from engine.tasks.evaluate import resolve_task_arg
from engine.tasks.lookup import two_way_loss

RANK_MODES = PRUNE_MODES  # mean | zero: one replacement value per node, so the estimate is one backward
NO_EFFECT_TOL = 1e-7  # a node is "no effect" when no sequence's logit difference moves by this much
N_CHECK = 50  # whole model: the nodes with the largest |estimate| checked exactly


@dataclass(frozen=True)
class RankEvent:
    """Progress of a ranking job: ``kind`` "setup", "estimate" or "exact"; ``step`` of ``total`` nodes."""

    kind: str
    step: int = 0
    total: int = 0
    message: str = ""

    @property
    def fraction(self) -> float | None:
        return self.step / self.total if self.total else None


@dataclass(frozen=True)
class NodeEffect:
    """One node ablated alone, exactly, against a baseline: plain immutable data."""

    node: str
    delta_loss: float  # task loss with the node ablated minus the baseline's
    delta_accuracy: float  # percentage points
    mean_abs_dlogit_diff: float  # mean over sequences of |change of target - foil logit|
    max_abs_dlogit_diff: float
    no_effect: bool  # max_abs_dlogit_diff < NO_EFFECT_TOL: the ablation changes no logit difference

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def node_effect(node: NodeId | str, base: AblationResult, now: AblationResult) -> NodeEffect:
    """The effect of one ablation (``now``) against its ``base`` (same ablator, mode and baseline)."""
    d = np.abs(now.logit_diff.astype(np.float64) - base.logit_diff.astype(np.float64))
    top = float(d.max()) if d.size else 0.0
    return NodeEffect(node=str(node), delta_loss=now.loss - base.loss,
                      delta_accuracy=100.0 * (now.accuracy - base.accuracy),
                      mean_abs_dlogit_diff=float(d.mean()) if d.size else 0.0, max_abs_dlogit_diff=top,
                      no_effect=top < NO_EFFECT_TOL)


def check_mode(mode: str) -> str:
    if mode not in RANK_MODES:
        raise UserError(f"unknown ablation mode {mode!r} for rank; choose one of {', '.join(RANK_MODES)}")
    return mode


def exact_scan(ablator: Ablator, nodes: Iterable[NodeId | str], mode: str = "mean", baseline: str = "full",
               circuit_mode: str | None = None, reference: bool = False
               ) -> Generator[RankEvent, None, tuple[AblationResult, list[NodeEffect]]]:
    """The baseline's result and, in the order given, each node ablated alone on top of it, exactly:
    packed and batched (:func:`engine.ablation.scan.scan`), or with ``reference`` one
    ``Ablator.evaluate([node], (), mode, baseline, circuit_mode)`` per node (the naive reference). A
    generator of progress events."""
    nodes = list(nodes)
    base = ablator.evaluate((), (), mode, baseline, circuit_mode)
    if reference:
        results = []
        for i, n in enumerate(nodes):
            results.append(ablator.evaluate([n], (), mode, baseline, circuit_mode))
            yield RankEvent("exact", i + 1, len(nodes), f"node {i + 1}/{len(nodes)} ablated alone")
    else:
        results = yield from _scan_events(scan(ablator, nodes, mode, baseline, circuit_mode))
    return base, [node_effect(n, base, r) for n, r in zip(nodes, results)]


def _scan_events(gen: Generator) -> Generator[RankEvent, None, list[AblationResult]]:
    """A scan's progress as RankEvents; returns the scan's results."""
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        yield RankEvent("exact", p.done, p.total, f"{p.done}/{p.total} nodes ablated alone")


def exact_effects(ablator: Ablator, nodes: Iterable[NodeId | str], mode: str = "mean", baseline: str = "full",
                  circuit_mode: str | None = None, reference: bool = False) -> tuple[AblationResult, list[NodeEffect]]:
    """:func:`exact_scan` to the end."""
    return run_to_end(exact_scan(ablator, nodes, mode, baseline, circuit_mode, reference))


def sort_effects(effects: Sequence[NodeEffect]) -> list[NodeEffect]:
    """By |delta loss|, largest first; ties by mean |change of logit difference|, then by name."""
    return sorted(effects, key=lambda e: (-abs(e.delta_loss), -e.mean_abs_dlogit_diff, e.node))


def attribution_estimates(ablator: Ablator, mode: str = "mean",
                          sites: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Attribution patching on the full model: per site, a (width,) float64 array of the estimated change
    of the held-out task loss when that node alone is ablated with ``mode`` (see the module docstring).

    One forward over the ablator's sequences (length-sorted chunks; the last layer at the last positions
    only, as the Ablator computes it) and one backward to keep masks of ones on every site. Reads the
    ablator's model and data, changes nothing; do not run it while another thread evaluates the same
    ablator (an edge ablation patches a weight for the duration of its evaluation)."""
    check_mode(mode)
    model, cfg, dev = ablator.model, ablator.cfg, ablator.device
    values = ablator.values(mode)
    sites = [s for s in (sites or all_sites(cfg, final=True)) if s in values]
    masks = {s: torch.ones(site_width(cfg, s), device=dev, requires_grad=True) for s in sites}
    order = torch.argsort(ablator.lengths, stable=True)
    with torch.enable_grad(), intervene(mask_hooks(masks, values)):
        for i in range(0, ablator.n, CHUNK):
            rows = order[i:i + CHUNK]
            tokens = ablator.tokens[rows, : int(ablator.lengths[rows].max())]
            logits = logits_from(model, 0, model.embed(tokens), ablator.last[rows], ablator.last_tok[rows])
            loss = two_way_loss(logits, ablator.target[rows], ablator.foil[rows]).sum() / ablator.n
            loss.backward()
    return {s: -m.grad.detach().double().cpu().numpy() for s, m in masks.items()}


def _average_ranks(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(len(a), dtype=np.float64)
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]  # ties share their mean rank


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman rank correlation (ties get their average rank); None with fewer than 2 values or when
    either side is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) != len(b):
        raise ValueError("spearman: the two sequences differ in length")
    if len(a) < 2:
        return None
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den > 0 else None


def _base_fields(base: AblationResult, n_seq: int) -> dict[str, Any]:
    return {"pairs": n_seq // 2, "n_sequences": n_seq, "loss_baseline": base.loss,
            "accuracy_baseline": base.accuracy, "circuit_mode": base.circuit_mode}


def circuit_ranking(ablator: Ablator, mode: str = "mean", nodes: Iterable[NodeId | str] | None = None,
                    circuit_mode: str | None = None, reference: bool = False) -> Generator[RankEvent, None, dict]:
    """Every circuit node (or ``nodes``) ablated alone on top of the circuit alone, exactly, sorted by
    effect (:func:`sort_effects`); a generator of progress events returning plain data. Everything
    outside the circuit is ablated with ``circuit_mode`` (default: as the app and ``circuit-engine
    ablate`` do, ``engine.ablation.modes.circuit_mode_for``); ``reference``: one evaluation per node."""
    check_mode(mode)
    if ablator.circuit is None:
        raise UserError("rank_circuit needs an ablator with a circuit")
    outside = circuit_mode_for(mode) if circuit_mode is None else circuit_mode
    nodes = list(ablator.circuit.nodes if nodes is None else nodes)
    t0 = time.perf_counter()
    ablator.evaluate((), (), mode, "circuit", outside)  # builds the clean-run cache
    t1 = time.perf_counter()
    base, effects = yield from exact_scan(ablator, nodes, mode, "circuit", outside, reference)
    effects = sort_effects(effects)
    t2 = time.perf_counter()
    name = f"{ablator.circuit.task}/{ablator.circuit.name}"
    return {"kind": "exact", "mode": mode, "baseline": name, **_base_fields(base, ablator.n),
            "n_nodes": len(effects), "n_no_effect": sum(e.no_effect for e in effects),
            "rows": [e.to_dict() for e in effects], "scan": "one by one" if reference else "packed",
            "timing_s": {"baseline": t1 - t0, "exact": t2 - t1}}


def rank_circuit(ablator: Ablator, mode: str = "mean", nodes: Iterable[NodeId | str] | None = None,
                 circuit_mode: str | None = None, reference: bool = False) -> dict[str, Any]:
    """:func:`circuit_ranking` to the end."""
    return run_to_end(circuit_ranking(ablator, mode, nodes, circuit_mode, reference))


def whole_model_ranking(ablator: Ablator, mode: str = "mean", n_check: int = N_CHECK
                        ) -> Generator[RankEvent, None, dict]:
    """Attribution-patching estimates for every node of the full model, sorted by |estimate|; the first
    ``n_check`` checked exactly (full-model baseline) and the Spearman correlation of estimate and exact
    change of loss over them (``spearman_top50`` for the default 50). A generator of progress events
    returning plain data."""
    check_mode(mode)
    t0 = time.perf_counter()
    yield RankEvent("estimate", message="attribution patching: one forward and one backward")
    est = attribution_estimates(ablator, mode)
    t1 = time.perf_counter()
    flat = [(NodeId(site, i), float(v)) for site, arr in est.items() for i, v in enumerate(arr)]
    flat.sort(key=lambda p: (-abs(p[1]), str(p[0])))
    checked = flat[:max(0, n_check)]
    base, effects = yield from exact_scan(ablator, [n for n, _ in checked], mode, "full")
    t2 = time.perf_counter()
    rows = [{"node": str(n), "estimate": v} for n, v in flat]
    for row, e in zip(rows, effects):
        row.update({k: v for k, v in e.to_dict().items() if k != "node"})
    rho = spearman([v for _, v in checked], [e.delta_loss for e in effects])
    return {"kind": "estimate", "mode": mode, "baseline": "full", **_base_fields(base, ablator.n),
            "n_nodes": len(rows), "n_checked": len(effects), f"spearman_top{len(effects)}": rho,
            "spearman_top50": rho if len(effects) == N_CHECK else None,
            "n_no_effect_checked": sum(e.no_effect for e in effects),
            "n_zero_estimate": sum(1 for _, v in flat if v == 0.0), "rows": rows,
            "timing_s": {"estimate": t1 - t0, "exact_check": t2 - t1}}


def rank_whole_model(ablator: Ablator, mode: str = "mean", n_check: int = N_CHECK) -> dict[str, Any]:
    """:func:`whole_model_ranking` to the end."""
    return run_to_end(whole_model_ranking(ablator, mode, n_check))


def rank_job(run_dir: Path | str, task: str | None = None, task_file: str | Path | None = None,
             circuit: str | Path | None = None, mode: str = "mean", n_pairs: int = 64,
             whole_model: bool = False, n_check: int = N_CHECK, seed: int = 0,
             checkpoint: int | None = None) -> Generator[RankEvent, None, dict]:
    """``circuit-engine rank`` (and the app's Node effects dock) as a job: with a circuit (``circuit``,
    else the task's circuit in the run) every circuit node ablated alone, exactly (:func:`circuit_ranking`);
    without one, or with ``whole_model``, the attribution-patching estimate for every node with the top
    ``n_check`` checked (:func:`whole_model_ranking`). Held-out (``val``) pairs drawn with ``seed`` (the
    app's: 0); ``checkpoint``: the weights of that training step (then only an explicit ``circuit``).
    A generator of :class:`RankEvent`; returns plain data."""
    check_mode(mode)
    if n_pairs < 1:
        raise UserError(f"--pairs must be at least 1 (got {n_pairs})")
    if whole_model and circuit:
        raise UserError("give either a circuit or --whole-model, not both")
    yield RankEvent("setup", message="loading the run and the task's held-out pairs")
    run = load_run(run_dir, checkpoint=checkpoint)
    t = resolve_task_arg(task, task_file)
    path = None if whole_model or (checkpoint is not None and not circuit) else (
        find_circuit(run, circuit) if circuit else circuit_for_task(run, t.name))
    circ = load_circuit(path, run.model, run.model_hash) if path is not None else None
    t0 = time.perf_counter()
    ablator = run_ablator(run, t, circ, n_pairs, seed)[0]
    setup_s = time.perf_counter() - t0
    out = (yield from circuit_ranking(ablator, mode)) if circ is not None else \
        (yield from whole_model_ranking(ablator, mode, n_check))
    out["timing_s"]["setup"] = setup_s
    return {"task": t.name, "run": str(run.path), "circuit": str(path) if path is not None else None,
            "checkpoint": checkpoint, **out}


def rank_nodes(run_dir: Path | str, task: str | None = None, task_file: str | Path | None = None,
               circuit: str | Path | None = None, mode: str = "mean", n_pairs: int = 64,
               whole_model: bool = False, n_check: int = N_CHECK, seed: int = 0) -> dict[str, Any]:
    """:func:`rank_job` to the end (``circuit-engine rank``)."""
    return run_to_end(rank_job(run_dir, task, task_file, circuit, mode, n_pairs, whole_model, n_check, seed))
