"""The run folder: its layout, and loading a trained model back from it.

::

    RUN/
      config.json            RunConfig (schema_version)
      tokenizer.json         the tokenizer (char or BPE), JSON; an imported run may have none
      model.safetensors      latest weights (what inference loads)
      model.checksum.json    the hash model.safetensors was written with (checked on load)
      checkpoints/step_NNNNNNN.safetensors + .json   weights + Adam moments, metadata
      train_log.jsonl        one JSON object per logged step / evaluation
      run.json               corpus statistics and training status

Knows nothing about training loops or Qt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.checkpoint import (MODEL_FILE, CheckpointInfo, check_model_file, file_hash, list_checkpoints, load_tensors,
                               load_weights_into)
from engine.config import RunConfig, load_run_config
from engine.errors import UserError
from engine.fileio import read_json, read_jsonl
from engine.model import GPT, check_model_fits
from engine.paths import resolve_run
from engine.sparsity import EMBED_KINDS, density_report
from engine.data.tokenizer import load_tokenizer

CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
LOG_FILE = "train_log.jsonl"
STATUS_FILE = "run.json"


def check_run_dir(run_dir: Path | str) -> Path:
    """A run folder or name (``demo``, ``demo-dense``) -> its existing folder, else UserError."""
    run_dir = resolve_run(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder not found: {run_dir}")
    if not (run_dir / CONFIG_FILE).exists():
        raise UserError(f"{run_dir} is not a run folder (no {CONFIG_FILE}); train one with "
                        f"`circuit-engine train --preset tiny --out {run_dir}`")
    return run_dir


@dataclass(frozen=True)
class LoadedRun:
    """A trained model ready for inference (eval mode, no grad needed).

    ``checkpoint`` is the training step when the weights come from ``checkpoints/step_N`` instead of
    ``model.safetensors``; ``model_hash`` is then the checkpoint file's hash. ``tokenizer`` is None
    for a run imported without one (it evaluates token ids; :func:`run_tokenizer` for text)."""

    path: Path
    config: RunConfig
    tokenizer: Any | None
    model: GPT
    model_hash: str
    checkpoint: int | None = None


def load_run(run_dir: Path, device: str = "cpu", checkpoint: int | None = None) -> LoadedRun:
    """The run's latest model, or with ``checkpoint`` the weights of that training step."""
    run_dir = check_run_dir(run_dir)
    cfg = load_run_config(run_dir / CONFIG_FILE)
    tok = load_tokenizer(run_dir / TOKENIZER_FILE) if (run_dir / TOKENIZER_FILE).exists() else None
    weights = run_dir / MODEL_FILE if checkpoint is None else find_checkpoint(run_dir, checkpoint).weights
    if not weights.exists():
        raise UserError(f"{run_dir} has no trained model yet ({MODEL_FILE} missing); "
                        f"train it or resume with `circuit-engine train --resume --out {run_dir}`")
    check_model_fits(cfg.model, device, f"the model of {run_dir}")
    tensors = load_tensors(weights)  # a UserError for anything but a readable safetensors file
    digest = file_hash(weights)
    if checkpoint is None:
        check_model_file(weights, digest)  # byte flips: the checksum it was written with
    model = GPT.empty(cfg.model)  # no random init: every parameter is loaded (check_weights insists)
    load_weights_into(model, tensors, weights, assign=True)  # the file's tensors become the parameters
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedRun(run_dir, cfg, tok, model, digest, checkpoint)


def no_tokenizer_error(run_dir: Path) -> UserError:
    """The error for text-needing work on a run without tokenizer.json (an import without --tokenizer)."""
    return UserError(f"{run_dir} has no tokenizer ({TOKENIZER_FILE} missing), so it cannot encode text; import the "
                     f"model again with `circuit-engine import-openai MODEL_DIR --tokenizer TOK_DIR --out RUN`, "
                     f"or copy the model's {TOKENIZER_FILE} into {run_dir}")


def run_tokenizer(run: LoadedRun) -> Any:
    """The run's tokenizer, else a UserError saying how to add one."""
    if run.tokenizer is None:
        raise no_tokenizer_error(run.path)
    return run.tokenizer


def load_run_tokenizer(run_dir: Path) -> Any:
    """The tokenizer of a run folder without loading its model, else a UserError saying how to add one."""
    path = Path(run_dir) / TOKENIZER_FILE
    if not path.exists():
        raise no_tokenizer_error(Path(run_dir))
    return load_tokenizer(path)


def find_checkpoint(run_dir: Path, step: int) -> CheckpointInfo:
    """The complete checkpoint of ``step``, else a UserError listing the steps there are."""
    cks = list_checkpoints(run_dir)
    for ck in cks:
        if ck.step == step:
            return ck
    have = ", ".join(str(c.step) for c in cks) or "none"
    raise UserError(f"{run_dir} has no checkpoint at step {step} (checkpoints: {have})")


def checkpoint_val_losses(run_dir: Path) -> list[tuple[int, float | None]]:
    """(step, validation loss) of every complete checkpoint, oldest first. The loss is the training
    log's evaluation at exactly that step when there is one, else the last one the checkpoint saw."""
    evals = {e.get("step"): number(e.get("val_loss")) for e in read_log(run_dir)
             if e.get("kind") in ("eval", "done") and number(e.get("val_loss")) is not None}
    return [(ck.step, evals.get(ck.step, number(ck.meta.get("val_loss")))) for ck in list_checkpoints(run_dir)]


def number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None: what a log or status
    file says about a loss may be damaged, and a string must not reach arithmetic or formatting."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """Entries of train_log.jsonl: the lines that are JSON objects with a whole-number step and numbers
    (or null) where numbers belong (a torn last line after a crash, or a damaged one, is skipped); a
    folder in its place is a UserError."""
    return [e for e in read_jsonl(Path(run_dir) / LOG_FILE, what="training log") if _plausible(e)]


#: Fields of a log entry that are numbers (or null) when the entry was written by a training.
_LOG_NUMBERS = ("train_loss", "val_loss", "lr", "tokens_per_s", "eta_s")


def _plausible(entry: dict[str, Any]) -> bool:
    """A log entry whose step is a whole number and whose numeric fields are numbers or null."""
    step = entry.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int):
        return False
    return all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
               for v in (entry.get(k) for k in _LOG_NUMBERS))


def read_status(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / STATUS_FILE
    if not path.exists():
        return {}
    data = read_json(path, what="run status")
    return data if isinstance(data, dict) else {}


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run_checkpoints(run_dir: Path | str) -> list[tuple[int, float | None]]:
    """(step, validation loss) of every complete checkpoint of a run (folder or alias)."""
    return checkpoint_val_losses(check_run_dir(run_dir))


def run_info(run_dir: Path | str) -> dict[str, Any]:
    """Config, parameter counts, nonzeros and density per matrix class, training status."""
    run = load_run(run_dir)
    cfg = run.config
    rep = density_report(run.model)
    density = {}
    for kind, (nz, n) in rep.items():
        target = cfg.sparsity.embed_target if kind in EMBED_KINDS else cfg.sparsity.density
        density[kind] = {"nonzero": nz, "total": n, "density": nz / n,
                         "target": target if cfg.sparsity.enabled else 1.0}
    mats = [v for k, v in rep.items() if k not in EMBED_KINDS]
    status = read_status(run.path)
    evals = [number(e.get("val_loss")) for e in read_log(run.path) if e.get("kind") == "eval"]
    evals = [v for v in evals if v is not None]
    return {
        "run": str(run.path),
        "preset": cfg.preset,
        "sparse": cfg.sparsity.enabled,
        "config": cfg.to_dict(),
        "tokenizer": run.tokenizer.kind if run.tokenizer is not None else None,
        "vocab_size": cfg.model.vocab_size,
        "parameters": count_parameters(run.model),
        "nonzero_parameters": sum(int((p != 0).sum()) for p in run.model.parameters()),
        "density": density,
        "matrix_density": sum(nz for nz, _ in mats) / max(1, sum(n for _, n in mats)),
        "target_density": cfg.sparsity.density if cfg.sparsity.enabled else 1.0,
        "steps_done": _count(status.get("steps_done")),
        "total_steps": cfg.train.steps,
        "complete": status.get("complete") is True,
        "val_loss": evals[-1] if evals else number(status.get("val_loss")),
        "checkpoints": [c.step for c in list_checkpoints(run.path)],
        "corpus": status.get("corpus"),
        "model_hash": run.model_hash,
        "source": status.get("source"),
        "source_dir": status.get("model_dir"),
        "synthetic": status.get("synthetic") is True,
    }


def _count(value: Any) -> int | None:
    """A whole number of steps from a status file, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
