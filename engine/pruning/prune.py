"""Circuit discovery by pruning (SPEC §6): learned node masks, then bisection to the target loss.

Every node gets a mask logit tau (init N(0.1, 0.01), clamped to [-1, 1]); the forward pass uses the
hard gate [tau >= 0], the backward pass the sigmoid's derivative (straight-through). A masked node
takes its ablation value (pretraining mean, or zero). The model stays frozen; the objective is task
loss + k_coef * (number of active nodes). After training, nodes are ranked by tau and the smallest
prefix whose held-out task loss is <= the target is found by bisection. A small k_coef sweep keeps
the circuit with the fewest edges that passes.

``prune(...)`` is a generator of :class:`PruneEvent` returning a :class:`PruneResult`; cancel by
closing it. It is :func:`prepare`, then :func:`sweep_one` for every k_coef, then :func:`finish`.
Each k_coef's job is self-contained: its random draws are those the sequential sweep would make
(:func:`sweep_draws`), so engine.pruning.prune_all can run the jobs on different processes and get the same
circuit. Runs on the model's device. Every event carries ``fraction``, the share of the whole job
done (mask learning per k_coef, then its bisection, then the loss-vs-size curve), and no stretch of
work between two events is longer than one mask step or one held-out evaluation, so a caller that
closes the generator between events stops promptly. :func:`staged` maps the events of one job of
many (compare, formation) onto the whole. Knows nothing about files (the caller saves the circuit)
or Qt.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Generator

import numpy as np
import torch

from engine.ablation.core import (frozen_norm_hooks, group_nodes, keep_masks_from_nodes, last_logits, mask_hooks,
                                  metrics_from_logits, record_norm_scales)
from engine.circuits.circuit import Circuit, make_circuit, weight_edges
from engine.config import nonfinite_fields
from engine.errors import UserError
from engine.model import GPT
from engine.sites import NodeId, all_sites, site_width
from engine.pruning.refine import MAX_NO_OP_CHECK, drop_no_ops, mask_convergence
from engine.tasks.lookup import two_way_loss


@dataclass(frozen=True)
class PruneConfig:
    """Settings of one pruning job."""

    target_loss: float = 0.15
    "Held-out task loss the circuit must reach (per sequence, nats)."
    ablation: str = "mean"
    "'mean' (pretraining mean) or 'zero': what a pruned node is replaced with."
    frozen_norm: bool = False
    "Patch every norm's divisor from the unpruned run into the pruned run (SPEC §7)."
    k_coefs: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    "Node-count penalties to sweep; the passing circuit with the fewest edges wins."
    steps: int = 200
    "Mask optimisation steps per k_coef."
    batch_pairs: int = 32
    "Task pairs per mask step (two sequences each)."
    lr: float = 3e-3
    "AdamW learning rate for the mask logits."
    weight_decay: float = 1e-3
    "AdamW weight decay."
    warmup_frac: float = 0.05
    "Linear warmup fraction, then linear decay."
    grad_clip: float = 1.0
    "Gradient norm clip."
    train_pairs: int = 512
    "Pairs drawn from the task's training templates for mask learning."
    val_pairs: int = 200
    "Held-out pairs for bisection and reporting."
    calibrate: bool = False
    "Fit a logit scale and per-token shift after pruning (16 LBFGS steps); both losses are reported."
    seed: int = 0
    "Seeds pair generation, batches and mask init."

    def validate(self) -> "PruneConfig":
        if self.ablation not in ("mean", "zero"):
            raise UserError(f"--ablation must be 'mean' or 'zero', got {self.ablation!r}")
        for name, value in nonfinite_fields(self):  # an infinite target passes every circuit (and saves it)
            raise UserError(f"--{name.replace('_', '-')} must be finite, got {value!r}")
        if not self.target_loss > 0:
            raise UserError(f"--target-loss must be a finite number above 0, got {self.target_loss!r}")
        if not self.k_coefs or any(k < 0 for k in self.k_coefs):
            raise UserError("k_coefs must be a non-empty list of non-negative numbers")
        if self.steps < 1 or self.batch_pairs < 1 or self.train_pairs < 8 or self.val_pairs < 8:
            raise UserError("steps, batch_pairs must be >= 1 and train_pairs, val_pairs >= 8")
        return self


@dataclass(frozen=True)
class PruneEvent:
    """Progress: kind is setup | step | bisect | candidate | curve | faithfulness | done.

    ``step``/``total`` count mask steps (step), held-out evaluations (bisect, curve, faithfulness);
    ``fraction`` is the share of the whole job done, in [0, 1], or None when unknown (setup)."""

    kind: str
    step: int = 0
    total: int = 0
    k_coef: float = 0.0
    loss: float | None = None
    n_active: int | None = None
    message: str = ""
    fraction: float | None = None


EMIT_INTERVAL_S = 0.05  # at most ~20 progress events per second
LEARN_SHARE = 0.85  # of one k_coef's share of the job: mask learning, the rest is its bisection
SWEEP_SHARE = 0.95  # of the whole job: the k_coef sweep, the rest is the loss-vs-size curve


def staged(gen: Generator[PruneEvent, None, Any], stage: int, n_stages: int,
           label: str = "") -> Generator[PruneEvent, None, Any]:
    """Run ``gen`` as stage ``stage`` of ``n_stages`` equal stages of a larger job (see
    :func:`rescaled`). Returns what ``gen`` returns."""
    return (yield from rescaled(gen, stage / n_stages, (stage + 1) / n_stages, label))


def rescaled(gen: Generator[PruneEvent, None, Any], lo: float, hi: float,
             label: str = "") -> Generator[PruneEvent, None, Any]:
    """Run ``gen`` as the stretch [lo, hi] of a larger job: fractions are mapped onto the whole and
    messages get ``label`` in front. Returns what ``gen`` returns; closing it closes ``gen``."""
    def outer(ev: PruneEvent) -> PruneEvent:
        frac = lo if ev.fraction is None else lo + (hi - lo) * ev.fraction
        msg = f"{label}: {ev.message}" if (label and ev.message) else ev.message
        return replace(ev, fraction=frac, message=msg)

    return (yield from _mapped(gen, outer))


def _mapped(gen: Generator[PruneEvent, None, Any], fn: Callable[[PruneEvent], PruneEvent]):
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            return stop.value
        try:
            yield fn(ev)
        except GeneratorExit:
            gen.close()
            raise


@dataclass(frozen=True)
class PruneResult:
    circuit: Circuit | None
    candidates: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    full_loss: float = float("nan")
    passed: bool = False


class _STEGate(torch.autograd.Function):
    """Heaviside forward, sigmoid-derivative backward."""

    @staticmethod
    def forward(ctx, tau):  # type: ignore[override]
        ctx.save_for_backward(tau)
        return (tau >= 0).to(tau.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (tau,) = ctx.saved_tensors
        s = torch.sigmoid(tau)
        return grad * s * (1 - s)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


class TaskBatch:
    """Encoded task sequences as tensors (right-padded tokens, lengths, target and foil ids)."""

    def __init__(self, enc, device: torch.device | str = "cpu"):
        self.tokens = torch.as_tensor(enc.tokens, dtype=torch.long).to(device)
        self.lengths = torch.as_tensor(enc.lengths, dtype=torch.long).to(device)
        self.target = torch.as_tensor(enc.target, dtype=torch.long).to(device)
        self.foil = torch.as_tensor(enc.foil, dtype=torch.long).to(device)
        self.n_pairs = len(self.tokens) // 2

    def rows(self, pair_idx: np.ndarray) -> tuple[torch.Tensor, ...]:
        r = torch.as_tensor(np.stack([2 * pair_idx, 2 * pair_idx + 1], 1).reshape(-1), dtype=torch.long,
                            device=self.tokens.device)
        lengths = self.lengths[r]
        return self.tokens[r, : int(lengths.max())], lengths, self.target[r], self.foil[r]

    def by_length(self) -> np.ndarray:
        """Pair indices sorted by prompt length (the longer side of the pair)."""
        pair_len = self.lengths.view(-1, 2).max(1).values.cpu().numpy()
        return np.argsort(pair_len, kind="stable")

    def window(self, start: int, k: int) -> np.ndarray:
        """k pairs of similar length: the window at ``start`` of the length-sorted order. Padding to
        the longest prompt in a random batch would waste about half of every mask step."""
        return self.by_length()[start:start + min(k, self.n_pairs)]

    def chunks(self, pairs_per_chunk: int = 64) -> list[tuple[np.ndarray, tuple[torch.Tensor, ...]]]:
        """All pairs in length-sorted chunks: [(pair indices, rows(...)), ...]."""
        order = self.by_length()
        return [(order[i:i + pairs_per_chunk], self.rows(order[i:i + pairs_per_chunk]))
                for i in range(0, self.n_pairs, pairs_per_chunk)]


class Evaluator:
    """Held-out task loss of the frozen model with a hard node set kept (or ablated).

    Rows are evaluated in length-sorted chunks (little padding) and put back in pair order."""

    def __init__(self, model: GPT, values: dict[str, torch.Tensor], batch: TaskBatch, frozen_norm: bool = False):
        self.model, self.values, self.frozen_norm = model, values, frozen_norm
        self.chunks = batch.chunks()
        order = np.concatenate([np.stack([2 * p, 2 * p + 1], 1).reshape(-1) for p, _ in self.chunks])
        self.inverse = torch.as_tensor(np.argsort(order), device=model_device(model))
        self.target = torch.cat([c[2] for _, c in self.chunks])[self.inverse]
        self.foil = torch.cat([c[3] for _, c in self.chunks])[self.inverse]
        self.scales = [record_norm_scales(model, c[0], c[1]) if frozen_norm else None for _, c in self.chunks]

    @torch.no_grad()
    def logits(self, keep: dict[str, torch.Tensor]) -> torch.Tensor:
        """Last-position logits of every held-out sequence, in pair order (2i = A, 2i+1 = B)."""
        out = []
        for (_, (tokens, lengths, _, _)), scales in zip(self.chunks, self.scales):
            hooks = mask_hooks(keep, self.values)
            if scales is not None:
                hooks.update(frozen_norm_hooks(scales))
            out.append(last_logits(self.model, tokens, lengths, hooks))
        return torch.cat(out)[self.inverse]

    def run(self, keep: dict[str, torch.Tensor]) -> dict[str, Any]:
        return metrics_from_logits(self.logits(keep), self.target, self.foil)

    def loss_keeping(self, nodes_by_site: dict[str, torch.Tensor]) -> float:
        return float(self.run(nodes_by_site)["loss"])


def _ranked_masks(model: GPT, order: list[tuple[str, int]], n_keep: int) -> dict[str, torch.Tensor]:
    keep = {s: torch.zeros(site_width(model.cfg, s)) for s in all_sites(model.cfg)}
    for site, i in order[:n_keep]:
        keep[site][i] = 1.0
    return {s: m.to(model_device(model)) for s, m in keep.items()}


def ranking(taus: dict[str, torch.Tensor]) -> tuple[list[tuple[str, int]], int]:
    """Nodes ordered by decreasing tau (stable) and the number with tau >= 0."""
    flat = [(v, s, i) for s, t in taus.items() for i, v in enumerate(t.tolist())]
    flat.sort(key=lambda x: -x[0])
    return [(s, i) for _, s, i in flat], sum(1 for v, _, _ in flat if v >= 0)


def sweep_draws(cfg: PruneConfig, n_pairs: int) -> list[tuple[int, list[int]]]:
    """Per k_coef: (mask-init seed, batch window starts), drawn in the order the sequential sweep
    draws them from one generator seeded with ``cfg.seed``: job i can run alone and match it."""
    rng = np.random.default_rng(cfg.seed)
    k = min(cfg.batch_pairs, n_pairs)
    out = []
    for _ in cfg.k_coefs:
        seed = int(rng.integers(2**31))
        out.append((seed, [int(rng.integers(0, n_pairs - k + 1)) for _ in range(cfg.steps)]))
    return out


def _learn_masks(model: GPT, values, train: TaskBatch, cfg: PruneConfig, k_coef: float,
                 draws: tuple[int, list[int]], progress: Callable[[float], float] = float,
                 trace: list[float] | None = None) -> Generator[PruneEvent, None, dict[str, torch.Tensor]]:
    """Train the mask logits for one k_coef with its random draws (``draws``, see :func:`sweep_draws`);
    ``progress`` maps this stretch's own fraction done to the job's; ``trace`` gets every step's task loss."""
    seed, starts = draws
    gen = torch.Generator().manual_seed(seed)
    taus = {s: (0.1 + 0.01 * torch.randn(site_width(model.cfg, s), generator=gen)).to(model_device(model))
            .requires_grad_(True) for s in all_sites(model.cfg)}
    opt = torch.optim.AdamW(list(taus.values()), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    warm = max(1, round(cfg.warmup_frac * cfg.steps))
    last_emit = 0.0
    for step in range(cfg.steps):
        lr = cfg.lr * min((step + 1) / warm, max(0.0, (cfg.steps - step) / max(1, cfg.steps - warm)))
        for g in opt.param_groups:
            g["lr"] = lr
        tokens, lengths, target, foil = train.rows(train.window(starts[step], cfg.batch_pairs))
        gates = {s: _STEGate.apply(t) for s, t in taus.items()}
        hooks = mask_hooks(gates, values)
        if cfg.frozen_norm:
            hooks.update(frozen_norm_hooks(record_norm_scales(model, tokens, lengths)))
        task_loss = two_way_loss(last_logits(model, tokens, lengths, hooks), target, foil).mean()
        n_active = sum(g.sum() for g in gates.values())
        (task_loss + k_coef * n_active).backward()
        if trace is not None:
            trace.append(float(task_loss.detach()))
        torch.nn.utils.clip_grad_norm_(list(taus.values()), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            for t in taus.values():
                t.clamp_(-1.0, 1.0)
        now = time.perf_counter()
        if now - last_emit > EMIT_INTERVAL_S or step == cfg.steps - 1:
            last_emit = now
            yield PruneEvent("step", step + 1, cfg.steps, k_coef, float(task_loss.detach()), int(n_active.detach()),
                             fraction=progress((step + 1) / cfg.steps))
    return {s: t.detach() for s, t in taus.items()}


def _bisect(model: GPT, ev: Evaluator, order: list[tuple[str, int]], lo_hint: int, target: float,
            k_coef: float = 0.0, progress: Callable[[float], float] = float):
    """Generator: smallest n (prefix of the ranking) whose loss <= target; returns (n, loss,
    evaluations). Yields a "bisect" event after held-out evaluations (throttled)."""
    total = len(order)
    expected = 2 * math.ceil(math.log2(total + 1)) + 1  # growth + halving steps, roughly
    cache: dict[int, float] = {}
    last_emit = [0.0]

    def loss_at(n: int):
        if n not in cache:
            cache[n] = ev.loss_keeping(_ranked_masks(model, order, n))
            now = time.perf_counter()
            if now - last_emit[0] > EMIT_INTERVAL_S:
                last_emit[0] = now
                yield PruneEvent("bisect", len(cache), expected, k_coef, cache[n], n,
                                 fraction=progress(min(0.99, len(cache) / expected)))
        return cache[n]

    hi = max(1, lo_hint)
    while (yield from loss_at(hi)) > target and hi < total:  # grow until it passes (or all are kept)
        hi = min(total, hi * 2)
    if (yield from loss_at(hi)) > target:
        return None, cache[hi], cache
    lo = 0  # invariant: loss_at(lo) > target (n = 0 assumed failing), loss_at(hi) <= target
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (yield from loss_at(mid)) <= target:
            hi = mid
        else:
            lo = mid
    return hi, cache[hi], cache


def _calibrate(keep: dict[str, torch.Tensor], fit: Evaluator, held_out: Evaluator) -> tuple[float, float]:
    """Fit logits' = a * logits + b[token] on the training pairs (16 LBFGS steps); returns
    (a, held-out loss after calibration)."""
    fit_logits = fit.logits(keep)
    a = torch.ones((), device=fit_logits.device, requires_grad=True)
    b = torch.zeros(fit_logits.shape[1], device=fit_logits.device, requires_grad=True)
    opt = torch.optim.LBFGS([a, b], max_iter=16, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = two_way_loss(a * fit_logits + b, fit.target, fit.foil).mean()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(a), float(two_way_loss(a * held_out.logits(keep) + b, held_out.target, held_out.foil).mean())


def _curve(model: GPT, ev: Evaluator, order, points: int = 12):
    """Generator: task loss against circuit size along the ranking (for the loss-vs-edges figure);
    returns the list of points and yields a "curve" event per point."""
    total = len(order)
    sizes = sorted({max(1, int(round(total ** (i / (points - 1))))) for i in range(points)})
    out = []
    for j, n in enumerate(sizes):
        keep_nodes = [NodeId(s, i) for s, i in order[:n]]
        out.append({"nodes": n, "edges": len(weight_edges(model, keep_nodes)),
                    "loss": ev.loss_keeping(_ranked_masks(model, order, n))})
        yield PruneEvent("curve", j + 1, len(sizes), loss=out[-1]["loss"], n_active=n,
                         fraction=SWEEP_SHARE + (1 - SWEEP_SHARE) * (j + 1) / len(sizes))
    return out


@dataclass
class Prepared:
    """One task on one frozen model, ready for mask learning: batches, evaluator, full-model metrics."""

    model: GPT
    values: dict[str, torch.Tensor]
    train: TaskBatch
    ev: Evaluator
    full: dict[str, Any]


def prepare(model: GPT, values: dict[str, torch.Tensor], train_enc, val_enc, cfg: PruneConfig) -> Prepared:
    """Freeze the model and evaluate it in full on the held-out pairs (on the model's device)."""
    cfg.validate()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    dev = model_device(model)
    values = {s: v.to(dev) for s, v in values.items()}
    ev = Evaluator(model, values, TaskBatch(val_enc, dev), cfg.frozen_norm)
    return Prepared(model, values, TaskBatch(train_enc, dev), ev, ev.run({}))


def check_full(prep: Prepared, cfg: PruneConfig, task_name: str) -> None:
    full = prep.full["loss"]
    if full > cfg.target_loss:
        raise UserError(f"the full model's held-out loss on {task_name} is {full:.3f}, above the target "
                        f"{cfg.target_loss}; the model cannot do this task well enough (train longer, or raise "
                        f"the target loss: --target-loss, or Target loss in the app)")


def sweep_one(prep: Prepared, cfg: PruneConfig, index: int
              ) -> Generator[PruneEvent, None, tuple[dict[str, Any], dict[str, torch.Tensor]]]:
    """Learn masks for k_coef number ``index`` and bisect; returns (candidate numbers, mask logits).
    Event fractions place this k_coef's stretch within the whole sequential job."""
    model, ev, k_coef = prep.model, prep.ev, cfg.k_coefs[index]
    n_k = len(cfg.k_coefs)

    def share(lo: float, hi: float) -> Callable[[float], float]:
        return lambda f: SWEEP_SHARE * (index + lo + (hi - lo) * f) / n_k

    trace: list[float] = []
    taus = yield from _learn_masks(model, prep.values, prep.train, cfg, k_coef,
                                   sweep_draws(cfg, prep.train.n_pairs)[index], share(0.0, LEARN_SHARE), trace)
    convergence = mask_convergence(taus, trace)
    order, n_pos = ranking(taus)
    n, loss, _ = yield from _bisect(model, ev, order, n_pos, cfg.target_loss, k_coef, share(LEARN_SHARE, 1.0))
    done = SWEEP_SHARE * (index + 1) / n_k
    if n is None:
        yield PruneEvent("candidate", k_coef=k_coef, loss=loss, message=f"k_coef {k_coef:g}: no passing circuit",
                         fraction=done)
        return {"k_coef": k_coef, "passed": False, "loss": loss, "convergence": convergence}, taus
    n_edges = len(weight_edges(model, [NodeId(s, i) for s, i in order[:n]]))
    yield PruneEvent("candidate", k_coef=k_coef, loss=loss, n_active=n,
                     message=f"k_coef {k_coef:g}: {n} nodes, {n_edges} edges, held-out loss {loss:.4f}", fraction=done)
    return {"k_coef": k_coef, "passed": True, "nodes": n, "edges": n_edges, "loss": loss,
            "active_after_training": n_pos, "convergence": convergence}, taus


def finish(prep: Prepared, cfg: PruneConfig, results: list[tuple[dict[str, Any], dict[str, torch.Tensor]]], *,
           task_name: str, model_hash: str, run: str = "", t0: float | None = None
           ) -> Generator[PruneEvent, None, PruneResult]:
    """The circuit of the passing candidate with the fewest edges (then nodes; the first on a tie);
    ``results`` in k_coef order."""
    model, ev, full = prep.model, prep.ev, prep.full
    t0 = time.perf_counter() if t0 is None else t0
    candidates = [c for c, _ in results]
    best = None
    for cand, taus in results:
        if cand["passed"] and (best is None or (cand["edges"], cand["nodes"]) < (best[0]["edges"], best[0]["nodes"])):
            best = (cand, taus)
    if best is None:
        return PruneResult(None, tuple(candidates), full["loss"], False)
    cand, order = best[0], ranking(best[1])[0]
    nodes, dropped = yield from _without_no_ops(model, ev, [NodeId(s, i) for s, i in order[: cand["nodes"]]])
    result = ev.run(keep_masks_from_nodes(model, kept=group_nodes(nodes)))
    metrics: dict[str, Any] = {
        "full_loss": full["loss"], "full_accuracy": full["accuracy"], "circuit_loss": result["loss"],
        "circuit_accuracy": result["accuracy"], "target_loss": cfg.target_loss, "k_coef": cand["k_coef"],
        "candidates": candidates, "seconds": None, "convergence": cand.get("convergence"),
        "no_ops_dropped": None if dropped is None else [str(n) for n in dropped],
        "n_pairs": int(len(ev.target)) // 2,
    }
    metrics["curve"] = yield from _curve(model, ev, order)
    if cfg.calibrate:
        keep = keep_masks_from_nodes(model, kept=group_nodes(nodes))
        scale, cal_loss = _calibrate(keep, Evaluator(model, prep.values, prep.train, cfg.frozen_norm), ev)
        metrics.update({"calibrated_loss": cal_loss, "calibration_scale": scale})
    metrics["seconds"] = round(time.perf_counter() - t0, 2)
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()}
    circuit = make_circuit(model, task_name, nodes, model_hash,
                           run=run, name=f"{cfg.ablation}{'-frozen-norm' if cfg.frozen_norm else ''}",
                           metrics=metrics, settings=settings)
    yield PruneEvent("done", message=f"{circuit.n_nodes} nodes, {circuit.n_edges} edges, held-out loss "
                                     f"{result['loss']:.4f} in {metrics['seconds']:.1f}s", fraction=1.0)
    return PruneResult(circuit, tuple(candidates), full["loss"], True)


def _without_no_ops(model: GPT, ev: Evaluator, nodes: list[NodeId]):
    """Generator: the nodes without those whose ablation changes no held-out logit (see
    engine.pruning.refine); returns (nodes, dropped), dropped None when the circuit is too large to check."""
    if len(nodes) > MAX_NO_OP_CHECK:
        return nodes, None
    gen = drop_no_ops(nodes, lambda ns: keep_masks_from_nodes(model, kept=group_nodes(ns)), ev.logits)
    last = 0.0
    while True:
        try:
            k = next(gen)
        except StopIteration as stop:
            return stop.value
        now = time.perf_counter()
        if now - last > EMIT_INTERVAL_S:
            last = now
            yield PruneEvent("refine", k, len(nodes), fraction=SWEEP_SHARE, message="")


def prune(model: GPT, values: dict[str, torch.Tensor], train_enc, val_enc, cfg: PruneConfig, *,
          task_name: str, model_hash: str, run: str = "") -> Generator[PruneEvent, None, PruneResult]:
    """Find the circuit of one task. ``values`` are the ablation values per site (means or zeros)."""
    t0 = time.perf_counter()
    prep = prepare(model, values, train_enc, val_enc, cfg)
    full = prep.full
    yield PruneEvent("setup", message=f"full model held-out loss {full['loss']:.4f}, accuracy {full['accuracy']:.3f}",
                     fraction=0.0)
    check_full(prep, cfg, task_name)
    results = []
    for index in range(len(cfg.k_coefs)):
        results.append((yield from sweep_one(prep, cfg, index)))
    return (yield from finish(prep, cfg, results, task_name=task_name, model_hash=model_hash, run=run, t0=t0))
