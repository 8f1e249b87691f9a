"""Reading an OpenAI ``final_model.pt`` safely and strictly (../shared/fixtures/openai/FORMAT.md §1.2).

The file is a pickle inside a zip (``torch.save``). Nothing here unpickles anything but tensors and
plain containers: the zip's layout is checked first (one top-level folder with a ``data.pkl``), then
``torch.load(weights_only=True, mmap=True)`` reads it without copying the weights into memory, and
every tensor's name, shape and dtype is checked against the config before anything uses it. Their
own loader ignores wrong and missing keys; this one refuses them. Every problem is one UserError
naming the file.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from engine.errors import UserError
from engine.interop.openai_format import TensorSpec, is_ignored_buffer

#: Dtypes a weight may have; all become float32.
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def check_archive(path: Path) -> str:
    """The zip's one top-level folder (``archive`` when written through a file object), else UserError."""
    if not path.is_file():
        raise UserError(f"{path} is a folder, not a file" if path.is_dir() else f"{path} not found")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a PyTorch checkpoint: not a zip archive as torch.save writes "
                        f"(truncated, or another kind of file?) ({exc})") from None
    prefixes = {n.split("/", 1)[0] for n in names}
    if len(prefixes) != 1:
        raise UserError(f"{path} is not a PyTorch checkpoint: its zip has {len(prefixes)} top-level entries, "
                        f"torch.save writes one folder")
    prefix = prefixes.pop()
    if f"{prefix}/data.pkl" not in names:
        raise UserError(f"{path} is not a PyTorch checkpoint: no {prefix}/data.pkl in its zip")
    return prefix


def safe_torch_load(path: Path, what: str, mmap: bool = False) -> Any:
    """A ``torch.save``'d file, after the zip check, with ``weights_only=True`` (tensors and plain
    containers only: nothing else is ever unpickled); any failure is one UserError naming the file
    and ``what`` it should have been."""
    path = Path(path)
    check_archive(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        found = _UNSUPPORTED_GLOBAL.search(str(exc))
        detail = f" ({found.group(1)})" if found else ""
        raise UserError(f"{path} was not loaded: it holds pickled objects other than tensors and plain "
                        f"containers{detail}, which circuit-engine never unpickles; it may be malicious") from None
    except Exception as exc:  # a damaged zip member, a truncated storage, a bad pickle stream
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} could not be read as {what} ({type(exc).__name__}: {first})") from None


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``torch.save``'d state dict, memory-mapped (nothing else is unpickled)."""
    return _as_tensor_dict(safe_torch_load(path, "a PyTorch state dict", mmap=True), Path(path))


def _as_tensor_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict):
        raise UserError(f"{path} holds a {type(obj).__name__}, not a state dict (a dict of named tensors)")
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise UserError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor; "
                            f"a state dict holds only named tensors")
    return dict(obj)


def check_tensors(sd: dict[str, torch.Tensor], specs: list[TensorSpec], path: Path) -> list[str]:
    """Check names, shapes and dtypes against the config's specs; return the ignored buffer names."""
    by_name = {s.theirs: s for s in specs}
    ignored = sorted(k for k in sd if k not in by_name and is_ignored_buffer(k))
    unexpected = sorted(set(sd) - set(by_name) - set(ignored))
    missing = [s.theirs for s in specs if s.required and s.theirs not in sd]
    if missing or unexpected:
        parts = ([f"missing {_few(missing)}"] if missing else []) + ([f"unexpected {_few(unexpected)}"] if unexpected else [])
        raise UserError(f"{path} does not match its beeg_config.json: {'; '.join(parts)}; "
                        f"is the config from another model?")
    for spec in specs:
        t = sd.get(spec.theirs)
        if t is None:
            continue
        if tuple(t.shape) not in spec.shapes:
            want = " or ".join(str(list(s)) for s in spec.shapes)
            raise UserError(f"{path}: {spec.theirs} has shape {list(t.shape)}, its beeg_config.json says {want}; "
                            f"is the config from another model?")
        if t.dtype not in FLOAT_DTYPES:
            raise UserError(f"{path}: {spec.theirs} has dtype {str(t.dtype).replace('torch.', '')}, expected a "
                            f"float (float32, float16 or bfloat16)")
        if t.layout != torch.strided or t.is_sparse:
            raise UserError(f"{path}: {spec.theirs} is not a dense tensor")
    return ignored


def _few(names: list[str]) -> str:
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return ", ".join(names[:3]) + more


def same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors are one (shared storage, offset and strides) or equal."""
    if (a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr() and a.storage_offset() == b.storage_offset()
            and a.stride() == b.stride() and a.shape == b.shape and a.dtype == b.dtype):
        return True
    return a.shape == b.shape and bool(torch.equal(a.float(), b.float()))
