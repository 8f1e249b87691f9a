"""Before a training starts: can this output folder take a new run, or can the run in it continue?

:func:`check_output_dir` is the one place that decides, before any corpus is read, whether training
may start in a folder; :func:`engine.train.loop.train` calls it, and the app calls it when Start or Resume
is pressed so that a bad folder is reported at once. The messages name both the app's buttons and
the CLI's options. :func:`train_status` says how far the run in a folder got (from its newest
complete checkpoint); :func:`damaged_log_lines` how many lines of its training log cannot be read (the
readers skip them; the app says so). Knows nothing about the training loop or Qt.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.checkpoint import MODEL_FILE, list_checkpoints
from engine.config import RunConfig, load_run_config
from engine.errors import UserError
from engine.model import check_fits, model_bytes
from engine.fileio import jsonl_objects
from engine.runs import CONFIG_FILE, LOG_FILE, read_log


@dataclass(frozen=True)
class TrainStatus:
    """What a folder holds, training-wise."""

    run_dir: Path
    has_run: bool
    "The folder has a config.json (a run was created there)."
    steps_done: int
    "Step of the newest complete checkpoint (0 without one): where a resume starts."
    total_steps: int
    "The stored config's train.steps (0 without a run)."
    has_model: bool
    "model.safetensors exists, so the run opens in the app."
    config: RunConfig | None

    @property
    def complete(self) -> bool:
        return self.has_run and self.steps_done >= self.total_steps


def train_status(run_dir: Path | str) -> TrainStatus:
    """The training state of ``run_dir`` (UserError when its config.json is unreadable)."""
    run_dir = Path(run_dir).expanduser()
    if not (run_dir / CONFIG_FILE).is_file():
        return TrainStatus(run_dir, False, 0, 0, False, None)
    cfg = load_run_config(run_dir / CONFIG_FILE)
    cks = list_checkpoints(run_dir)
    return TrainStatus(run_dir, True, cks[-1].step if cks else 0, cfg.train.steps,
                       (run_dir / MODEL_FILE).is_file(), cfg)


def damaged_log_lines(run_dir: Path | str) -> int:
    """How many lines of the run's ``train_log.jsonl`` are not log entries (bytes that are not UTF-8,
    not JSON, not an object, a step that is not a number...): :func:`engine.runs.read_log` skips them.
    A torn last line (no newline: a training killed mid-write) is expected and not counted; an
    unreadable log (a folder in its place) counts as 0 here, since reading it says why."""
    path = Path(run_dir).expanduser() / LOG_FILE
    try:
        data = path.read_bytes() if path.is_file() else b""
        good = len(read_log(path.parent))
    except (OSError, UserError):
        return 0
    lines = [line for line in data.split(b"\n") if line.strip()]
    if lines and not data.endswith(b"\n") and not jsonl_objects(lines[-1]):
        lines = lines[:-1]
        good = min(good, len(lines))
    return max(0, len(lines) - good)


def check_output_dir(run_dir: Path | str, resume: bool = False, steps: int | None = None) -> TrainStatus:
    """UserError unless training can start in ``run_dir``: a new run needs a missing or empty folder
    that can be created and written; a resume needs a run there (continued to ``steps`` when given,
    which must be more than the steps it has done). Returns the folder's :class:`TrainStatus`."""
    run_dir = Path(run_dir).expanduser()
    if resume:
        status = train_status(run_dir)
        if not status.has_run:
            raise UserError(f"cannot resume: {run_dir} has no {CONFIG_FILE}, so no run was started there; "
                            f"start a new run in it instead")
        if steps is not None and steps <= status.steps_done:
            raise UserError(f"cannot resume {run_dir} to {steps} steps: its last checkpoint is at step "
                            f"{status.steps_done}; set more steps than that to continue it")
        _check_writable(run_dir, run_dir)
        return status
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise UserError(f"{run_dir} already exists and is not an empty folder; resume the run in it "
                        f"(Resume, or --resume) or choose a new output folder")
    ancestor = run_dir
    while not ancestor.exists() and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    _check_writable(ancestor, run_dir)
    return TrainStatus(run_dir, False, 0, 0, False, None)


def _check_writable(folder: Path, run_dir: Path) -> None:
    """Create and delete a probe file in ``folder`` (os.access is wrong for root and for ACLs)."""
    if not folder.is_dir():
        raise UserError(f"cannot create the output folder {run_dir}: {folder} is a file, not a folder; "
                        f"choose another output folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UserError(f"cannot write to {folder} ({exc.strerror or exc}); choose an output folder you "
                        f"can write to") from None


def training_bytes(cfg: RunConfig, world_size: int = 1) -> tuple[int, int]:
    """(parameters, a rough lower bound of the bytes one process needs to train ``cfg``): weights,
    gradients and two Adam moments, one batch's activations (attention scores and logits included)
    and the validation batches."""
    n, size = model_bytes(cfg.model)
    m, t = cfg.model, cfg.train
    B, T = max(1, t.batch_size // max(1, world_size)), m.n_ctx
    per_token = m.n_layer * (16 * m.d_resid + 4 * m.d_mlp + 3 * m.n_head * T) + 3 * m.vocab_size
    return n, 4 * size + 4 * B * T * per_token + 8 * t.eval_batches * t.batch_size * (T + 1)


def check_training_fits(cfg: RunConfig, device: torch.device | str, world_size: int = 1) -> None:
    """UserError, before the corpus is read, when training ``cfg`` cannot fit on ``device``."""
    n, need = training_bytes(cfg, world_size)
    check_fits(need, device, f"training this model ({n:,} parameters, batch {cfg.train.batch_size} x "
                             f"{cfg.model.n_ctx} tokens)",
               "choose a smaller model (model.d_model, model.d_mlp, model.n_layer, model.n_ctx) or a smaller "
               "batch (train.batch_size, train.eval_batches)")
