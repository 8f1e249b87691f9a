"""Weights as safetensors, metadata as JSON, written atomically; nothing is ever unpickled.

A run folder holds ``model.safetensors`` (latest weights, what inference loads) and
``checkpoints/step_NNNNNNN.safetensors`` (weights + optimizer moments) with a ``.json`` beside each.
The JSON is written last: a checkpoint without its JSON is incomplete and is ignored.
Knows nothing about data, training loops or Qt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, load_file, save_file

from engine.errors import UserError
from engine.fileio import atomic_write, atomic_write_json, read_json

MODEL_FILE = "model.safetensors"
CKPT_DIR = "checkpoints"


@dataclass(frozen=True)
class CheckpointInfo:
    step: int
    weights: Path
    meta: dict[str, Any]


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, str(tmp), metadata=metadata))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise UserError(f"weights file not found: {path}") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable safetensors file ({exc})") from None


def parse_tensors(data: bytes, source: Path) -> dict[str, torch.Tensor]:
    """Tensors from the bytes of a safetensors file (e.g. one handed over by another process)."""
    try:
        return load(data)
    except (SafetensorError, ValueError) as exc:
        raise UserError(f"{source} is not a readable safetensors file ({exc})") from None


#: Names that are another parameter under a second name when the model ties its embeddings; the
#: files store the tensor once (safetensors refuses shared storage), under its first name.
TIED_ALIASES = {"lm_head.weight": "wte.weight"}


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a weights file holds: the state dict without tied aliases."""
    state = dict(model.state_dict())
    if getattr(getattr(model, "cfg", None), "tied_embed", False):
        for alias in TIED_ALIASES:
            state.pop(alias, None)
    return state


def save_model(run_dir: Path, model: torch.nn.Module) -> Path:
    path = Path(run_dir) / MODEL_FILE
    _save_tensors(path, model_state(model), {"format": "circuit-inspector/model"})
    return path


def load_weights_into(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    own = model_state(model)
    weights = {k: v for k, v in tensors.items() if not k.startswith("opt.")}
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    if missing or unexpected:
        raise UserError(f"{source} does not match the run's config (missing: {missing[:3]}, "
                        f"unexpected: {unexpected[:3]}); was it written for another model?")
    for k, v in weights.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise UserError(f"{source}: {k} has shape {tuple(v.shape)}, the config expects "
                            f"{tuple(own[k].shape)}; was it written for another model?")
    model.load_state_dict(weights, strict=set(own) == set(model.state_dict()))  # tied aliases follow their tensor


def _opt_tensors(model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for name, p in model.named_parameters():
        st = opt.state.get(p)
        if not st:
            continue
        for key, val in st.items():
            t = val if torch.is_tensor(val) else torch.tensor(float(val))
            out[f"opt.{name}.{key}"] = t
    return out


def _restore_opt(model: torch.nn.Module, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    for name, p in model.named_parameters():
        prefix = f"opt.{name}."
        st = {k[len(prefix):]: v.to(p.device) for k, v in tensors.items() if k.startswith(prefix)}
        if st:
            if "step" in st:
                st["step"] = st["step"].to("cpu", torch.float32)
            opt.state[p] = st


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer,
                    meta: dict[str, Any], keep: int = 0) -> CheckpointInfo:
    """Write checkpoint ``step`` (weights + optimizer, then its JSON) and refresh model.safetensors."""
    ckdir = Path(run_dir) / CKPT_DIR
    stem = f"step_{step:07d}"
    weights = ckdir / f"{stem}.safetensors"
    _save_tensors(weights, {**model_state(model), **_opt_tensors(model, opt)}, {"step": str(step)})
    meta = {**meta, "step": step, "weights": weights.name}
    atomic_write_json(ckdir / f"{stem}.json", meta)
    save_model(run_dir, model)
    if keep > 0:
        for old in list_checkpoints(run_dir)[:-keep]:
            old.weights.unlink(missing_ok=True)
            (old.weights.with_suffix(".json")).unlink(missing_ok=True)
    return CheckpointInfo(step, weights, meta)


def list_checkpoints(run_dir: Path) -> list[CheckpointInfo]:
    """Complete checkpoints (JSON present and weights present), oldest first."""
    out = []
    for js in sorted((Path(run_dir) / CKPT_DIR).glob("step_*.json")):
        try:
            meta = read_json(js, what="checkpoint metadata")
        except UserError:
            continue
        weights = js.with_suffix(".safetensors")
        if isinstance(meta, dict) and isinstance(meta.get("step"), int) and weights.exists():
            out.append(CheckpointInfo(meta["step"], weights, meta))
    return sorted(out, key=lambda c: c.step)


def load_checkpoint(ck: CheckpointInfo, model: torch.nn.Module, opt: torch.optim.Optimizer | None) -> None:
    restore_checkpoint(load_tensors(ck.weights), model, opt, ck.weights)


def restore_checkpoint(tensors: dict[str, torch.Tensor], model: torch.nn.Module,
                       opt: torch.optim.Optimizer | None, source: Path) -> None:
    """Load a checkpoint's tensors (weights + optimizer moments) into a model and its optimizer."""
    load_weights_into(model, tensors, source)
    if opt is not None:
        _restore_opt(model, opt, tensors)


def file_hash(path: Path) -> str:
    """Content hash of a file (hex, 16 bytes): identifies a model's weights in stores and circuits."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
