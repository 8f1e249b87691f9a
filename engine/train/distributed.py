"""Several processes on torch.distributed, launched by torchrun (env:// rendezvous).

``launch()`` joins the process group that torchrun describes in the environment (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and leaves it in ``finally``; without torchrun (or with one
process) it yields a single-process :class:`DistContext` and torch.distributed is never touched.
The group has a gloo backend for CPU tensors and, where CUDA exists, NCCL for CUDA tensors: the
DDP gradient all-reduce runs on the model's device, the small bookkeeping collectives here on CPU.

Rank 0 (the *main* rank) does all file io. :func:`from_main` runs a setup step on rank 0 only and
hands its result, or its error, to every rank as JSON plus raw byte blobs (never pickles), so the
other ranks need neither the run folder nor the corpus: several machines need no shared disk.
Every collective has the timeout given to ``launch()``: a rank that cannot reach the rendezvous, or
that waits for a peer that died, stops with a :class:`UserError` instead of hanging.

Also here: the mask checksum that proves every rank holds the same top-k masks, and splitting and
gathering independent jobs (pruning sweeps). Knows nothing about training loops, files or Qt.
"""

from __future__ import annotations

import datetime
import gc
import hashlib
import json
import os
import socket
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as tdist

from engine.config import DEFAULT_MASK_CHECK_EVERY, DEFAULT_TIMEOUT_S
from engine.errors import UserError

T = TypeVar("T")


class PeerError(UserError):
    """Raised on a non-main rank when the main rank failed; the main rank reports the message."""

    reported_elsewhere = True


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the group. The default is a single process (no group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    mask_check_every: int = DEFAULT_MASK_CHECK_EVERY
    "Training steps between the mask checksum comparisons."

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every rank (a CPU all-reduce, so it never touches a GPU)."""
        if self.active:
            tdist.all_reduce(torch.zeros(1))

    def mean(self, value: float) -> float:
        """The mean of ``value`` over ranks (equal-sized shards: the global-batch mean)."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        tdist.all_reduce(t)
        return float(t[0]) / self.world_size

    def peer_error(self, message: str) -> UserError:
        """The error every rank raises for a condition they all detect: printed by rank 0 only."""
        return UserError(message) if self.is_main else PeerError(message)


SINGLE = DistContext()


def _env_int(name: str, default: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        if default is None:
            raise UserError(f"WORLD_SIZE is set but {name} is not: start several processes with torchrun "
                            f"(e.g. `torchrun --nproc_per_node=2 -m engine.cli train ...`)")
        return default
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"environment variable {name}={raw!r} is not an integer") from None


def _wait_for_port(host: str, port: int, timeout_s: float) -> None:
    """Retry a TCP connection to the rendezvous until it answers or the timeout passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(2.0, max(0.1, timeout_s))):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise UserError(f"cannot reach the rendezvous at {host}:{port} within {timeout_s:g} s ({exc}); "
                                f"start every node with the same torchrun command and check --rdzv-endpoint "
                                f"(or MASTER_ADDR/MASTER_PORT) and the firewall") from None
            time.sleep(0.2)


@contextmanager
def launch(timeout_s: float = DEFAULT_TIMEOUT_S,
           mask_check_every: int = DEFAULT_MASK_CHECK_EVERY) -> Iterator[DistContext]:
    """Join the torchrun process group (or run alone); the group is destroyed in ``finally``."""
    if timeout_s <= 0:
        raise UserError(f"--dist-timeout must be positive, got {timeout_s:g}")
    if mask_check_every < 1:
        raise UserError(f"--mask-check-every must be >= 1, got {mask_check_every}")
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        yield DistContext(mask_check_every=mask_check_every)
        return
    rank, local = _env_int("RANK"), _env_int("LOCAL_RANK", 0)
    host, port = os.environ.get("MASTER_ADDR", "127.0.0.1"), _env_int("MASTER_PORT")
    if rank != 0 or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        _wait_for_port(host, port, timeout_s)  # (rank 0 without torchrun's agent hosts the store itself)
    backend = "gloo"
    if torch.cuda.is_available():
        backend = "cpu:gloo,cuda:nccl"
        if local < torch.cuda.device_count():
            torch.cuda.set_device(local)
    try:
        tdist.init_process_group(backend, init_method="env://", rank=rank, world_size=world,
                                 timeout=datetime.timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as exc:  # DistError is a RuntimeError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"rank {rank} of {world} could not join the process group at {host}:{port} within "
                        f"{timeout_s:g} s ({first}); are all {world} processes running?") from None
    try:
        yield DistContext(rank, world, local, mask_check_every)
    finally:
        # Anything that still holds the group (a DistributedDataParallel wrapper caught in a reference
        # cycle) goes now, while the group can be torn down in order; left to the interpreter's exit,
        # gloo's threads can abort the process after its work is done (engine/cli/__main__.py).
        gc.collect()
        tdist.destroy_process_group()


def resolve_device(requested: str, ctx: DistContext = SINGLE) -> torch.device:
    """'cpu', 'cuda' or 'cuda:N' -> a torch.device; under torchrun each rank takes cuda:LOCAL_RANK.
    UserError when CUDA (or that many GPUs) is not there."""
    if requested == "cpu":
        return torch.device("cpu")
    if not requested.startswith("cuda"):
        raise UserError(f"unknown device {requested!r}; use cpu or cuda")
    if not torch.cuda.is_available():
        raise UserError(f"--device {requested} requested but CUDA is not available here; use --device cpu")
    index = ctx.local_rank if ctx.active else (int(requested.split(":", 1)[1]) if ":" in requested else 0)
    if index >= torch.cuda.device_count():
        raise UserError(f"cuda:{index} requested but only {torch.cuda.device_count()} GPU(s) are visible; "
                        f"start at most that many processes per node (--nproc_per_node)")
    return torch.device("cuda", index)


# ---------------------------------------------------------------------------------------------
# Moving plain data between ranks: JSON headers and byte blobs over CPU (gloo) collectives.


def _broadcast_bytes(data: bytes | None) -> bytes:
    n = torch.tensor([len(data) if data is not None else 0], dtype=torch.int64)
    tdist.broadcast(n, src=0)
    buf = torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(int(n[0]), dtype=torch.uint8)
    if int(n[0]):
        tdist.broadcast(buf, src=0)
    return buf.numpy().tobytes()


def _pack(header: dict[str, Any], blobs: dict[str, bytes]) -> bytes:
    head = json.dumps({"header": header, "blobs": [[k, len(v)] for k, v in blobs.items()]}).encode()
    return len(head).to_bytes(8, "little") + head + b"".join(blobs.values())


def _unpack(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    n = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8:8 + n])
    blobs, pos = {}, 8 + n
    for name, size in meta["blobs"]:
        blobs[name] = data[pos:pos + size]
        pos += size
    return meta["header"], blobs


def from_main(ctx: DistContext, fn: Callable[[], T], encode: Callable[[T], tuple[dict, dict[str, bytes]]],
              decode: Callable[[dict, dict[str, bytes]], T]) -> T:
    """Run ``fn`` on the main rank only; every other rank gets ``decode(*encode(result))``.

    If ``fn`` fails on the main rank, the other ranks raise :class:`PeerError` with its message."""
    if not ctx.active:
        return fn()
    if ctx.is_main:
        try:
            value = fn()
            payload = b"\x00" + _pack(*encode(value))
        except BaseException as exc:
            _broadcast_bytes(b"\x01" + (str(exc) if isinstance(exc, UserError) else
                                        f"rank 0 failed: {type(exc).__name__}: {exc}").encode())
            raise
        _broadcast_bytes(payload)
        return value
    payload = _broadcast_bytes(None)
    if payload[:1] == b"\x01":
        raise PeerError(payload[1:].decode())
    return decode(*_unpack(payload[1:]))


def gather_to_main(ctx: DistContext, header: dict[str, Any], blobs: dict[str, bytes]
                   ) -> list[tuple[dict[str, Any], dict[str, bytes]]]:
    """Every rank sends a JSON header and blobs; rank 0 gets them all in rank order (others: [])."""
    data = _pack(header, blobs)
    if not ctx.active:
        return [(header, blobs)]
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(ctx.world_size)]
    tdist.all_gather(sizes, torch.tensor([len(data)], dtype=torch.int64))
    width = max(int(s[0]) for s in sizes)
    mine = torch.zeros(width, dtype=torch.uint8)
    mine[:len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    bufs = [torch.empty(width, dtype=torch.uint8) for _ in range(ctx.world_size)]
    tdist.all_gather(bufs, mine)
    if not ctx.is_main:
        return []
    return [_unpack(b[:int(s[0])].numpy().tobytes()) for b, s in zip(bufs, sizes)]


def split_jobs(jobs: Sequence[T], ctx: DistContext) -> list[T]:
    """This rank's share of ``jobs``: every world_size-th one, starting at its rank."""
    return list(jobs[ctx.rank::ctx.world_size])


# ---------------------------------------------------------------------------------------------
# DDP and the top-k mask check


def wrap_ddp(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """DistributedDataParallel around ``model``: gradients are averaged over ranks during backward."""
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    with warnings.catch_warnings():  # newer torch renames broadcast_buffers; the old name works everywhere
        warnings.simplefilter("ignore", FutureWarning)
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                       broadcast_buffers=False,  # the only buffer is the constant causal mask
                                       gradient_as_bucket_view=True)


@torch.no_grad()
def mask_checksum(params: Sequence[torch.Tensor]) -> int:
    """A 63-bit hash of the zero/nonzero pattern of the given matrices (their top-k masks)."""
    h = hashlib.blake2b(digest_size=8)
    for p in params:
        h.update(np.packbits((p != 0).reshape(-1).cpu().numpy()).tobytes())
    return int.from_bytes(h.digest(), "little") >> 1


def verify_masks(ctx: DistContext, params: Sequence[torch.Tensor], step: int) -> None:
    """All-gather the mask checksums; a mismatch stops every rank with the same clear error."""
    if not ctx.active:
        return
    mine = torch.tensor([mask_checksum(params)], dtype=torch.int64)
    sums = [torch.zeros(1, dtype=torch.int64) for _ in range(ctx.world_size)]
    tdist.all_gather(sums, mine)
    values = [int(s[0]) for s in sums]
    if len(set(values)) > 1:
        groups = {v: [r for r, x in enumerate(values) if x == v] for v in values}
        detail = "; ".join(f"ranks {rs}: {v:016x}" for v, rs in groups.items())
        raise ctx.peer_error(f"top-k weight masks differ between ranks at step {step} ({detail}): the replicas "
                             f"diverged, which DDP should make impossible (non-deterministic kernels or a "
                             f"hardware fault); resume from the last checkpoint")
