"""Training as a generator of small frozen progress events (SPEC §2).

``train(...)`` yields :class:`TrainEvent` objects (throttled to about 20 per second) and returns a
:class:`TrainResult`. Cancel by closing the generator: the ``finally`` block writes a checkpoint of the
last completed step, so a cancelled run resumes exactly. The CLI prints the events; the app runs the
same generator in a worker thread. A caller can only cancel between events, so long phases (reading
and tokenising the corpus, an evaluation) yield ``busy`` heartbeats between their parts: cancelling
waits for at most one training step or one evaluation batch.

One optimizer step: forward + backward -> gradients divided by their global RMS -> Adam (eps 0.1)
-> top-k projection of every sparsified matrix at the annealed budget -> decoupled weight decay on
matrices. The lr is warmup + linear decay times the sharkfin factor sqrt(L0_target / L0_current).

Under torchrun (``dist``, see engine.train.distributed) every rank trains its slice of the same global
batch inside DistributedDataParallel, which averages the gradients during backward, i.e. before the
RMS normalisation: every rank takes the step the single process would take on the whole batch, and
the top-k masks stay identical (checked by an all-gathered checksum). Rank 0 alone reads the corpus
and the checkpoint, hands them to the other ranks, and writes every file. The global batch does not
depend on the number of processes, so a run can resume on another number of processes.
This module knows nothing about Qt or printing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generator, Iterator

import numpy as np
import torch

from engine.checkpoint import CKPT_DIR, parse_tensors, restore_checkpoint, save_checkpoint
from engine.config import RunConfig, run_config_from_dict
from engine.data.corpus import CorpusStats, TokenData
from engine.train.distributed import SINGLE, DistContext, from_main, resolve_device, verify_masks, wrap_ddp
from engine.errors import UserError
from engine.fileio import atomic_write_json
from engine.jobs import run_to_end  # noqa: F401  (re-exported: the CLI and tests drive jobs with it)
from engine.model import GPT
from engine.runs import CONFIG_FILE, LOG_FILE, STATUS_FILE, TOKENIZER_FILE, number
from engine.sparsity import WeightSparsifier, densities
from engine.data.tokenizer import load_tokenizer
from engine.train.data import Setup, decode_setup, encode_setup, setup_steps
from engine.train.data import prepare_data  # noqa: F401  (re-exported)
from engine.train.monitor import DEFAULT_MONITOR_PAIRS, MonitorTask, prepare_monitor, task_loss
from engine.train.resume import clean_stale_temps, resume_point, trim_log
from engine.train.setup import check_output_dir, check_training_fits

log = logging.getLogger(__name__)

EVENT_INTERVAL_S = 0.05  # at most ~20 step events per second


@dataclass(frozen=True)
class TrainEvent:
    """One progress report. ``kind``: setup | busy | step | eval | checkpoint | done.

    ``busy`` is a heartbeat inside a long phase that carries no numbers. ``eval`` events carry the
    validation loss and, for the tasks the run monitors, ``task_losses`` ((task, held-out loss), ...).
    """

    kind: str
    step: int
    total_steps: int
    train_loss: float | None = None
    val_loss: float | None = None
    lr: float = 0.0
    density: tuple[tuple[str, float], ...] = ()
    tokens_per_s: float = 0.0
    eta_s: float = 0.0
    message: str = ""
    task_losses: tuple[tuple[str, float], ...] = ()

    @property
    def fraction(self) -> float:
        """Share of the run's steps done, in [0, 1]."""
        return min(1.0, self.step / self.total_steps) if self.total_steps > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("density", "task_losses")}
        d["density"] = dict(self.density)
        if self.task_losses:
            d["task_losses"] = dict(self.task_losses)
        return d


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    steps_done: int
    total_steps: int
    final_val_loss: float | None
    cancelled: bool
    corpus: CorpusStats | None


def lr_at(step: int, cfg: RunConfig) -> float:
    """Warmup then linear decay to 0 (before the sharkfin factor)."""
    t = cfg.train
    warm = max(1, round(t.warmup_frac * t.steps))
    if step < warm:
        return t.lr * (step + 1) / warm
    return t.lr * max(0.0, (t.steps - step) / max(1, t.steps - warm))


@torch.no_grad()
def normalize_grad_rms(params: list[torch.nn.Parameter], eps: float = 1e-5) -> float:
    """Divide all gradients by (global gradient RMS + eps); returns the RMS before."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norms = torch._foreach_norm(grads)
    total = torch.linalg.vector_norm(torch.stack(norms))
    n = sum(g.numel() for g in grads)
    rms = total / math.sqrt(n)
    torch._foreach_div_(grads, rms + eps)
    return float(rms)


def uses_bf16(cfg: RunConfig, device: torch.device) -> bool:
    """train.precision: 'auto' is bf16 autocast (+ TF32) on CUDA and fp32 on CPU."""
    return cfg.train.precision == "bf16" or (cfg.train.precision == "auto" and device.type == "cuda")


class Trainer:
    """The model, optimizer and sparsifier of one run; ``step()`` does one optimizer step.

    Separate from the event loop so benchmarks reuse the exact step. With an active ``dist`` the
    forward pass goes through DistributedDataParallel (gradients averaged over ranks in backward).
    """

    def __init__(self, cfg: RunConfig, device: str | torch.device = "cpu", dist: DistContext = SINGLE):
        self.cfg = cfg
        self.device = torch.device(device)
        torch.manual_seed(cfg.train.seed)
        self.model = GPT(cfg.model)
        self.model.reset_parameters(seed=cfg.train.seed)
        self.model.to(self.device)
        self.sparsifier = WeightSparsifier(self.model, cfg.sparsity)
        params = list(self.model.parameters())
        self.params = params
        t = cfg.train
        self.opt = torch.optim.Adam(params, lr=t.lr, betas=(t.beta1, t.beta2), eps=t.eps,
                                    weight_decay=0.0, foreach=True)
        named = dict(self.model.named_parameters())
        self.decay_params = [p for n, p in named.items() if p.dim() >= 2 and n != "bigram"]
        self.forward = wrap_ddp(self.model, dist) if dist.active else self.model
        self.bf16 = uses_bf16(cfg, self.device)

    def autocast(self):
        """bf16 autocast of the forward pass (weights, gradients and masks stay fp32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    @contextlib.contextmanager
    def tf32(self) -> Iterator[None]:
        """TF32 matmuls on CUDA while a step runs; the global switches are restored afterwards."""
        if not (self.bf16 and self.device.type == "cuda"):
            yield
            return
        saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved

    def lr(self, step: int) -> float:
        factor = self.sparsifier.sharkfin(step / self.cfg.train.steps) if self.cfg.train.sharkfin else 1.0
        return lr_at(step, self.cfg) * factor

    def step(self, step: int, tokens: torch.Tensor) -> tuple[float, float]:
        """One optimizer step on tokens (B, T+1); returns (loss, lr)."""
        self.model.train()
        x, y = tokens[:, :-1], tokens[:, 1:]
        lr = self.lr(step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        with self.tf32():
            with self.autocast():
                _, loss = self.forward(x, y)
            loss.backward()  # under DDP: gradients averaged over ranks here, before the RMS normalisation
            if self.cfg.train.grad_rms_norm:
                normalize_grad_rms(self.params)
            self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.sparsifier.project((step + 1) / self.cfg.train.steps)
        wd = self.cfg.train.weight_decay
        if wd > 0:
            with torch.no_grad():
                torch._foreach_mul_(self.decay_params, 1.0 - lr * wd)
        return float(loss.detach()), lr

    @torch.no_grad()
    def batch_loss(self, batch: np.ndarray) -> float:
        """Mean next-token loss on one batch (B, T+1) (this rank's slice of it under DDP), in eval mode."""
        self.model.eval()
        t = torch.from_numpy(batch).to(self.device)
        with self.tf32(), self.autocast():
            _, loss = self.model(t[:, :-1], t[:, 1:])
        return float(loss)

    def evaluate(self, batches: list[np.ndarray]) -> float:
        return float(np.mean([self.batch_loss(b) for b in batches]))


def _busy(gen: Generator[Any, None, Any], step: int, total: int) -> Generator[TrainEvent, None, Any]:
    """Run ``gen`` to its return value, yielding a ``busy`` event between its parts (at most one per
    EVENT_INTERVAL_S), so that whoever drives the training can cancel inside a long phase."""
    last = time.perf_counter()
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
        now = time.perf_counter()
        if now - last >= EVENT_INTERVAL_S:
            last = now
            yield TrainEvent("busy", step, total)


def _evaluation(trainer: Trainer, batches: list[np.ndarray], monitor: list[MonitorTask], dist: DistContext = SINGLE):
    """Validation loss (averaged over ranks), then the monitored task losses, one part at a time
    -> (val_loss, task_losses)."""
    losses = []
    for b in batches:
        losses.append(trainer.batch_loss(b))
        yield
    val_loss = dist.mean(float(np.mean(losses)))
    tasks = []
    for task in monitor:
        tasks.append((task.name, task_loss(trainer.model, task, trainer.device)))
        yield
    return val_loss, tuple(tasks)


def _start_run(run_dir: Path, cfg: RunConfig | None, resume: bool, steps: int | None):
    """Validate the folder state and, on resume, choose the checkpoint (nothing in the run changes
    before that; engine.train.resume); returns (cfg, tokenizer or None, checkpoint or None, notes)."""
    if cfg is None and not resume:
        raise UserError("no config given for a new run")
    status = check_output_dir(run_dir, resume, steps)
    if not resume:
        return cfg.validate(), None, None, ()
    stored = status.config
    if cfg is not None and cfg != stored:
        raise UserError(f"--resume continues {run_dir} with its stored config; drop the config options "
                        f"or train into a new --out folder")
    point = resume_point(run_dir, stored)
    tokenizer = load_tokenizer(run_dir / TOKENIZER_FILE)
    clean_stale_temps(run_dir)
    if steps is not None and steps != stored.train.steps:
        # Continuing to another total: the lr schedule and the annealing are laid out on the new one.
        stored = replace(stored, train=replace(stored.train, steps=steps)).validate()
        atomic_write_json(run_dir / CONFIG_FILE, stored.to_dict())
    return stored, tokenizer, point.checkpoint, point.notes


def _begin(run_dir: Path, cfg: RunConfig | None, resume: bool, device: str | None, steps: int | None,
           dist: DistContext) -> Generator[TrainEvent, None, tuple[int, Setup]]:
    """Agree on the config (rank 0 checks the folder), read the corpus and build the tokenizer
    (heartbeats while it runs) -> (total steps, the setup)."""

    def start():
        started = _start_run(run_dir, cfg, resume, steps)
        dev = resolve_device(device or started[0].train.device, dist)  # fail before reading the corpus
        if started[0].train.batch_size % dist.world_size:
            raise UserError(f"train.batch_size ({started[0].train.batch_size}) must be a multiple of the number "
                            f"of processes ({dist.world_size}): every rank trains an equal slice of the batch")
        check_training_fits(started[0], dev, dist.world_size)
        return started

    first_cfg, tokenizer, ckpt, notes = from_main(dist, start, lambda r: ({"config": r[0].to_dict()}, {}),
                                                  lambda h, _: (run_config_from_dict(h["config"]), None, None, ()))
    total = first_cfg.train.steps
    for note in notes:
        yield TrainEvent("setup", 0, total, message=note)
    yield TrainEvent("setup", 0, total, message="reading corpus and building tokenizer")
    phases = setup_steps(run_dir, first_cfg, tokenizer, ckpt, resume)
    if dist.active:
        setup = from_main(dist, lambda: run_to_end(phases), encode_setup, decode_setup)
    else:
        setup = yield from _busy(phases, 0, total)
    stats = setup.stats
    yield TrainEvent("setup", 0, total, message=(
        f"corpus: {stats.n_files} files ({stats.n_skipped} undecodable skipped, {stats.n_val_files} held out), "
        f"{stats.train_chars:,} train chars + {stats.snippet_chars:,} snippet chars; "
        f"tokenizer {setup.tokenizer_kind} with {setup.cfg.model.vocab_size} ids"))
    return total, setup


def _monitored(setup: Setup, task_eval: tuple[str, ...], task_pairs: int, dist: DistContext,
               total: int) -> Generator[TrainEvent, None, list[MonitorTask]]:
    """The tasks whose held-out loss every evaluation reports (a note for each one left out)."""
    monitor: list[MonitorTask] = []
    cfg = setup.cfg
    if task_eval and dist.active:
        yield TrainEvent("setup", 0, total, message="task monitoring runs in single-process training only")
    elif task_eval:
        monitor, notes = prepare_monitor(setup.tokenizer, tuple(task_eval), cfg.model.n_ctx, task_pairs,
                                         cfg.train.seed)
        for note in notes:
            yield TrainEvent("setup", 0, total, message=note)
    return monitor


def _restore(run_dir: Path, setup: Setup, trainer: Trainer, dist: DistContext,
             total: int) -> Generator[TrainEvent, None, int]:
    """Load the checkpoint to resume from, if any, into the trainer -> the step to start at."""
    if setup.ckpt is None:
        return 0
    source = run_dir / CKPT_DIR / str(setup.ckpt_meta.get("weights"))
    try:
        restore_checkpoint(parse_tensors(setup.ckpt, source), trainer.model, trainer.opt, source)
    except UserError as exc:
        raise dist.peer_error(str(exc)) from None
    start = setup.ckpt_meta["step"]
    was = setup.ckpt_meta.get("world_size", 1)
    if was != dist.world_size:
        yield TrainEvent("setup", start, total, message=(
            f"resuming step {start}, trained on {was} process(es), on {dist.world_size}: the global batch "
            f"({setup.cfg.train.batch_size} sequences) and the data order stay the same"))
    return start


class _Run:
    """One training run in progress: its events in the log file, its checkpoints and status file, and
    the state that a cancel or failure checkpoints in :meth:`close` (the last completed step)."""

    def __init__(self, run_dir: Path, cfg: RunConfig, trainer: Trainer, dist: DistContext, total: int,
                 status: dict[str, Any], start: int, saved: int, val_loss: float | None) -> None:
        self.run_dir, self.cfg, self.trainer, self.dist, self.total = run_dir, cfg, trainer, dist, total
        self.status = status
        self.start = self.done = start
        self.saved = saved
        self.val_loss = val_loss
        self.cancelled = True
        self.logfh = open(run_dir / LOG_FILE, "a", encoding="utf-8") if dist.is_main else None
        # The log as it was: entries past ``start`` are dropped only once a new checkpoint exists.
        size = (run_dir / LOG_FILE).stat().st_size if self.logfh is not None else 0
        self.log_mark = size or None
        self.log_every = max(1, total // 500)

    def checkpoint(self, step: int) -> None:
        if self.dist.is_main:
            cfg, total = self.cfg, self.total
            meta = {"val_loss": self.val_loss, "time": time.time(), "config_preset": cfg.preset,
                    "world_size": self.dist.world_size}
            save_checkpoint(self.run_dir, step, self.trainer.model, self.trainer.opt, meta,
                            keep=cfg.train.keep_checkpoints)
            atomic_write_json(self.run_dir / STATUS_FILE, {**self.status, "steps_done": step, "total_steps": total,
                                                           "val_loss": self.val_loss, "complete": step >= total})
            if self.log_mark is not None:  # resumed: now that new state is written, drop the redone entries
                self.logfh.close()
                trim_log(self.run_dir, self.start, self.log_mark)
                self.log_mark = None
                self.logfh = open(self.run_dir / LOG_FILE, "a", encoding="utf-8")
        self.saved = step

    def event(self, kind: str, step: int, **kw) -> TrainEvent:
        dens = tuple(sorted(densities(self.trainer.model).items()))
        ev = TrainEvent(kind, step, self.total, density=dens, **kw)
        if self.logfh is not None and (kind in ("eval", "done") or step % self.log_every == 0):
            self.logfh.write(json.dumps(ev.to_dict()) + "\n")
            self.logfh.flush()
        return ev

    def evaluate(self, val_batches: list[np.ndarray], monitor: list[MonitorTask],
                 step: int) -> Generator[TrainEvent, None, tuple[tuple[str, float], ...]]:
        """Evaluate (heartbeats while it runs): sets :attr:`val_loss`, returns the task losses."""
        self.val_loss, task_losses = yield from _busy(_evaluation(self.trainer, val_batches, monitor, self.dist),
                                                      step, self.total)
        return task_losses

    def close(self) -> None:
        """Checkpoint the last completed step unless the run finished or it is saved; close the log."""
        try:
            if self.cancelled and self.done > 0 and self.saved != self.done:
                self.checkpoint(self.done)  # leave a valid checkpoint of the last completed step
        finally:
            if self.logfh is not None:
                self.logfh.close()


def _train_steps(run: _Run, data: TokenData, val_batches: list[np.ndarray], monitor: list[MonitorTask],
                 start: int) -> Generator[TrainEvent, None, None]:
    """Steps ``start`` to the end: a ``step`` event at most every EVENT_INTERVAL_S, an ``eval`` event
    every ``eval_interval`` steps and after the last, a checkpoint every ``checkpoint_interval`` steps."""
    trainer, cfg, dist, total = run.trainer, run.cfg, run.dist, run.total
    B, rank, world = cfg.train.batch_size, dist.rank, dist.world_size
    tokens_per_step = B * cfg.model.n_ctx
    ema_dt: float | None = None
    last_emit = 0.0
    loss_acc: list[float] = []
    for step in range(start, total):
        t0 = time.perf_counter()
        batch = torch.from_numpy(data.batch(step, B, "train", rank, world)).to(trainer.device)
        loss, lr = trainer.step(step, batch)
        loss = dist.mean(loss)  # the loss of the whole global batch
        if not math.isfinite(loss):
            raise dist.peer_error(f"training diverged at step {step} (loss {loss}); lower train.lr")
        run.done = done = step + 1
        ckpt_due = done % cfg.train.checkpoint_interval == 0 and done < total
        if dist.active and (done % dist.mask_check_every == 0 or ckpt_due or done == total):
            verify_masks(dist, trainer.sparsifier.params, done)
        dt = time.perf_counter() - t0
        ema_dt = dt if ema_dt is None else 0.9 * ema_dt + 0.1 * dt
        loss_acc.append(loss)
        now = time.perf_counter()
        is_eval = done % cfg.train.eval_interval == 0 or done == total
        if is_eval or now - last_emit >= EVENT_INTERVAL_S:
            last_emit = now
            kw = dict(train_loss=float(np.mean(loss_acc)), lr=lr, tokens_per_s=tokens_per_step / ema_dt,
                      eta_s=ema_dt * (total - done))
            loss_acc = []
            if is_eval:  # decided by the step alone: every rank evaluates (collectively) together
                task_losses = yield from run.evaluate(val_batches, monitor, done)
                yield run.event("eval", done, val_loss=run.val_loss, task_losses=task_losses, **kw)
            else:
                yield run.event("step", done, **kw)
        if ckpt_due:
            run.checkpoint(done)
            yield TrainEvent("checkpoint", done, total, val_loss=run.val_loss, message=f"checkpoint at step {done}")


def train(run_dir: Path, cfg: RunConfig | None = None, resume: bool = False, device: str | None = None, *,
          steps: int | None = None, task_eval: tuple[str, ...] = (), task_pairs: int = DEFAULT_MONITOR_PAIRS,
          dist: DistContext = SINGLE) -> Generator[TrainEvent, None, TrainResult]:
    """Train (or resume) the run in ``run_dir``; yields progress events, returns a TrainResult.

    ``steps`` (with ``resume``): continue to this total instead of the stored one (it must exceed
    the steps done; a finished run trains on). ``task_eval``: built-in tasks whose held-out loss
    (``task_pairs`` pairs) every ``eval`` event reports; monitoring does not change what is trained
    (one process only). ``dist``: this process's place in a torchrun group (default: one process)."""
    run_dir = Path(run_dir).expanduser()
    total, setup = yield from _begin(run_dir, cfg, resume, device, steps, dist)
    cfg, data, stats = setup.cfg, setup.data, setup.stats
    monitor = yield from _monitored(setup, task_eval, task_pairs, dist, total)

    trainer = Trainer(cfg, resolve_device(device or cfg.train.device, dist), dist)
    start = yield from _restore(run_dir, setup, trainer, dist, total)
    B, rank, world = cfg.train.batch_size, dist.rank, dist.world_size
    val_batches = [data.batch(i, B, "val", rank, world) for i in range(cfg.train.eval_batches)]
    status = {"corpus": stats.__dict__, "tokenizer": setup.tokenizer_kind, "device": str(trainer.device),
              "world_size": world}
    run = _Run(run_dir, cfg, trainer, dist, total, status, start, saved=start if setup.ckpt is not None else -1,
               val_loss=number(setup.ckpt_meta.get("val_loss")) if setup.ckpt_meta else None)
    try:
        if start == 0 and total > 0:
            task_losses = yield from run.evaluate(val_batches, monitor, 0)
            yield run.event("eval", 0, val_loss=run.val_loss, lr=trainer.lr(0), eta_s=float("nan"),
                            task_losses=task_losses)
        yield from _train_steps(run, data, val_batches, monitor, start)
        run.checkpoint(total)
        dist.barrier()  # every rank reports done only once the final checkpoint exists
        run.cancelled = False
        yield TrainEvent("done", total, total, val_loss=run.val_loss, message=f"finished: {run_dir}")
    finally:
        run.close()
    return TrainResult(run_dir, run.done, total, run.val_loss, run.cancelled, stats)
