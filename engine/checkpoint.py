"""Weights as safetensors, metadata as JSON, written atomically; nothing is ever unpickled.

A run folder holds ``model.safetensors`` (latest weights, what inference loads) and
``checkpoints/step_NNNNNNN.safetensors`` (weights + optimizer moments) with a ``.json`` beside each.
The JSON is written last: a checkpoint without its JSON is incomplete and is ignored.
``model.checksum.json`` records the hash ``model.safetensors`` was written with; loading checks it.
Knows nothing about data, training loops or Qt.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load, load_file, save_file

from engine.errors import UserError
from engine.fileio import atomic_write, atomic_write_json, read_json

MODEL_FILE = "model.safetensors"
#: Beside ``model.safetensors``: the checksum(s) it was written with (see :func:`write_model_file`).
CHECKSUM_FILE = "model.checksum.json"
CKPT_DIR = "checkpoints"

log = logging.getLogger(__name__)


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


def save_model(run_dir: Path, model: torch.nn.Module, step: int | None = None) -> Path:
    """Write ``model.safetensors`` and its checksum; ``step``: the training step its weights are from
    (in its metadata)."""
    path = Path(run_dir) / MODEL_FILE
    write_model_file(path, model_state(model), {"step": str(step)} if step is not None else {})
    return path


def write_model_file(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write a run's ``model.safetensors`` (``metadata``: besides the format) atomically and record its
    checksum in ``model.checksum.json`` beside it, for :func:`check_model_file` to find byte flips.

    Every writer of the file calls this. A crash never leaves a checksum that condemns a valid file:
    before the rename the record lists the new hash *and* the old ones (either file may be there),
    after it only the new one. A run without a record (older runs) is accepted unchecked."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    sums = path.with_name(CHECKSUM_FILE)
    old = _recorded(sums)  # more than one only after crashes between the two writes
    new: list[dict[str, Any]] = []

    def write(tmp: Path) -> None:
        save_file(cpu, str(tmp), metadata={"format": "circuit-inspector/model", **metadata})
        new.append({"blake2b_128": file_hash(tmp), "bytes": tmp.stat().st_size, "step": metadata.get("step")})
        if old:  # without a record, none is needed for the file before the rename either
            atomic_write_json(sums, {"file": path.name, "hashes": new + old})

    atomic_write(path, write)
    atomic_write_json(sums, {"file": path.name, "hashes": new})


def _recorded(sums: Path) -> list[dict[str, Any]]:
    """The entries of a checksum record ({"blake2b_128", "bytes", ...}); [] when there is none, and,
    with a warning, when it does not read as one (the weights are then unchecked, not refused)."""
    if not sums.exists():
        return []
    try:
        data = read_json(sums, what="checksum record")
        entries = data["hashes"] if isinstance(data, dict) else None
        if not isinstance(entries, list) or not entries or not all(
                isinstance(e, dict) and isinstance(e.get("blake2b_128"), str) for e in entries):
            raise UserError(f"checksum record {sums} does not list hashes")
    except (UserError, KeyError) as exc:
        log.warning("%s; the weights beside it are not checked", exc)
        return []
    return entries


def check_model_file(path: Path, digest: str) -> None:
    """UserError when a checksum was recorded for the weights file ``path`` (see
    :func:`write_model_file`) and its content hash ``digest`` (:func:`file_hash`) is none of them."""
    entries = _recorded(Path(path).with_name(CHECKSUM_FILE))
    if not entries or any(e["blake2b_128"] == digest for e in entries):
        return
    size, sizes = Path(path).stat().st_size, [e.get("bytes") for e in entries]
    what = (f"it is {size:,} bytes but was written with {sizes[0]:,} (truncated or replaced?)"
            if isinstance(sizes[0], int) and size not in sizes else
            "its bytes changed since it was written (a disk, copy or transfer error)")
    raise UserError(f"{path} is damaged: its checksum does not match the one recorded in {CHECKSUM_FILE} when "
                    f"it was written; {what}. Restore the file from a backup, copy the run again, or load a "
                    f"checkpoint of it instead; if you replaced the weights on purpose, delete {CHECKSUM_FILE}")


def model_file_step(path: Path) -> int | None:
    """The training step a weights file says it holds (its ``step`` metadata), else None."""
    try:
        with safe_open(str(path), "pt") as fh:
            step = (fh.metadata() or {}).get("step")
        return int(step) if step is not None and step.isdigit() else None
    except (SafetensorError, OSError, ValueError):
        return None


def _check_tensor(name: str, v: torch.Tensor, shape: tuple[int, ...], source: Path) -> None:
    if tuple(v.shape) != shape:
        raise UserError(f"{source}: {name} has shape {tuple(v.shape)}, the config expects {shape}; was it "
                        f"written for another model?")
    if v.dtype != torch.float32:
        raise UserError(f"{source}: {name} is {str(v.dtype).replace('torch.', '')}, not float32; was it written "
                        f"by another program?")
    if not bool(torch.isfinite(v).all()):
        raise UserError(f"{source}: {name} holds NaN or infinite values; the file is damaged (use another "
                        f"checkpoint, or train again)")


def check_weights(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> dict[str, torch.Tensor]:
    """The model weights among ``tensors`` (no ``opt.`` entries), checked against ``model`` (any device,
    the meta device too): the same names, shapes, float32 and finite; else a UserError."""
    own = model_state(model)
    weights = {k: v for k, v in tensors.items() if not k.startswith("opt.")}
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    if missing or unexpected:
        raise UserError(f"{source} does not match the run's config (missing: {missing[:3]}, "
                        f"unexpected: {unexpected[:3]}); was it written for another model?")
    for k, v in weights.items():
        _check_tensor(k, v, tuple(own[k].shape), source)
    return weights


def check_opt_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """UserError unless the optimizer moments in ``tensors`` fit ``model``'s parameters (Adam's
    ``exp_avg`` / ``exp_avg_sq`` of each parameter's shape, a scalar ``step``)."""
    params = dict(model.named_parameters())
    for key, v in tensors.items():
        if not key.startswith("opt."):
            continue
        name, _, field = key[4:].rpartition(".")
        if name not in params or field not in ("exp_avg", "exp_avg_sq", "step"):
            raise UserError(f"{source}: unknown optimizer entry {key!r}; was it written for another model?")
        _check_tensor(key, v, () if field == "step" else tuple(params[name].shape), source)


def load_weights_into(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: Path,
                      assign: bool = False) -> None:
    """Check ``tensors`` (:func:`check_weights`) and load them into ``model``: copied into its
    parameters, or with ``assign`` made its parameters (no second copy of the weights in memory: for
    a model just built to be loaded, never one an optimizer holds)."""
    own = model_state(model)
    weights = check_weights(model, tensors, source)
    model.load_state_dict(weights, strict=set(own) == set(model.state_dict()), assign=assign)
    for alias, name in TIED_ALIASES.items():
        if assign and alias not in own and alias in model.state_dict():  # a tied alias: point it at the new tensor
            owner, _, attr = alias.rpartition(".")
            tied_owner, _, tied_attr = name.rpartition(".")
            setattr(model.get_submodule(owner), attr, getattr(model.get_submodule(tied_owner), tied_attr))


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
    save_model(run_dir, model, step)
    if keep > 0:
        for old in list_checkpoints(run_dir)[:-keep]:
            old.weights.unlink(missing_ok=True)
            (old.weights.with_suffix(".json")).unlink(missing_ok=True)
    return CheckpointInfo(step, weights, meta)


def step_of_name(path: Path) -> int | None:
    """The step a checkpoint file's name says (``step_0000100.json`` -> 100), else None."""
    digits = path.stem[len("step_"):] if path.stem.startswith("step_") else ""
    return int(digits) if digits.isdigit() and digits.isascii() else None


def checkpoint_problem(js: Path) -> tuple[CheckpointInfo | None, str]:
    """(the checkpoint described by the JSON ``js``, "") when its JSON is readable and agrees with its
    name and its weights file is there, else (None, what is wrong)."""
    try:
        meta = read_json(js, what="checkpoint metadata")
    except UserError as exc:
        return None, str(exc).replace(f" {js}", "")
    step = meta.get("step") if isinstance(meta, dict) else None
    if isinstance(step, bool) or not isinstance(step, int) or step != step_of_name(js):
        return None, f"its JSON says step {step!r}, its name step {step_of_name(js)}"
    weights = js.with_suffix(".safetensors")
    if not weights.is_file():
        return None, f"its weights {weights.name} are missing"
    return CheckpointInfo(step, weights, meta), ""


def list_checkpoints(run_dir: Path) -> list[CheckpointInfo]:
    """Complete checkpoints (JSON readable and agreeing with its name, weights present), oldest first."""
    ckdir = Path(run_dir) / CKPT_DIR
    found = (checkpoint_problem(js)[0] for js in ckdir.glob("step_*.json")) if ckdir.is_dir() else ()
    return sorted((c for c in found if c is not None), key=lambda c: c.step)


def load_checkpoint(ck: CheckpointInfo, model: torch.nn.Module, opt: torch.optim.Optimizer | None) -> None:
    restore_checkpoint(load_tensors(ck.weights), model, opt, ck.weights)


def restore_checkpoint(tensors: dict[str, torch.Tensor], model: torch.nn.Module,
                       opt: torch.optim.Optimizer | None, source: Path) -> None:
    """Load a checkpoint's tensors (weights + optimizer moments) into a model and its optimizer."""
    load_weights_into(model, tensors, source)
    if opt is not None:
        check_opt_tensors(model, tensors, source)
        _restore_opt(model, opt, tensors)


def file_hash(path: Path) -> str:
    """Content hash of a file (hex, 16 bytes): identifies a model's weights in stores and circuits."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
