"""Pretraining text: source folders (default: the standard library) mixed with idiom snippets.

Files are read in sorted order, undecodable ones are skipped and counted, and every file goes to the
train or validation split by a stable hash of its relative path, so the split never depends on the
machine. Batches are drawn by a random generator seeded with (seed, step): the same step always gets
the same batch, which makes resume exact and gives the dense twin the same data order. This module
knows nothing about models or Qt.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.config import DataConfig
from engine.errors import UserError
from engine.data.idioms import generate_snippets

_SKIP_DIRS = {"test", "tests", "idle_test", "__pycache__", "site-packages", "dist-packages"}
_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class CorpusStats:
    """What was read: counts for the CLI and the run's metadata."""

    n_files: int
    n_skipped: int
    n_val_files: int
    train_chars: int
    val_chars: int
    snippet_chars: int
    folders: tuple[str, ...]


@dataclass(frozen=True)
class SourceText:
    """Raw text of the corpus before tokenisation."""

    train: str
    val: str
    stats: CorpusStats


def default_folders() -> tuple[str, ...]:
    """The running interpreter's standard library."""
    return (sysconfig.get_paths()["stdlib"],)


def discover_files(cfg: DataConfig) -> list[Path]:
    folders = cfg.folders or default_folders()
    files: list[Path] = []
    for folder in folders:
        root = Path(folder).expanduser()
        if not root.exists():
            raise UserError(f"corpus folder not found: {root}")
        if root.is_file():
            files.append(root)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames
                                 if not (cfg.exclude_tests and d in _SKIP_DIRS) and not d.startswith("."))
            files += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(tuple(cfg.extensions))]
    return files


def _is_val(path: Path, val_frac: float) -> bool:
    h = int.from_bytes(hashlib.blake2b(path.as_posix().encode(), digest_size=8).digest(), "little")
    return (h % 10_000) < val_frac * 10_000


def read_sources(cfg: DataConfig) -> SourceText:
    """Read and split the source folders. UserError when nothing readable is found."""
    files = discover_files(cfg)
    folders = cfg.folders or default_folders()
    train: list[str] = []
    val: list[str] = []
    skipped = n_val = total = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            skipped += 1
            continue
        if not text.strip():
            continue
        text = text.replace("\r\n", "\n").replace("\t", "    ")
        if _is_val(path.relative_to(path.anchor), cfg.val_frac):
            val.append(text)
            n_val += 1
        else:
            train.append(text)
        total += len(text)
        if cfg.max_chars and total >= cfg.max_chars:
            break
    n_read = len(train) + len(val)
    if n_read == 0:
        where = ", ".join(str(f) for f in folders)
        raise UserError(f"no readable {'/'.join(cfg.extensions)} files in corpus folder(s) {where} "
                        f"({skipped} undecodable skipped); choose a folder that holds {'/'.join(cfg.extensions)} source "
                        f"files (--corpus DIR), or leave the corpus unset for the standard library")
    if not val or not train:  # too few files for a file-level split: split the text itself
        text = _SEPARATOR.join(train + val)
        cut = max(1, int(len(text) * (1 - cfg.val_frac)))
        train, val = [text[:cut]], [text[cut:]]
    train_text, val_text = _SEPARATOR.join(train), _SEPARATOR.join(val)
    stats = CorpusStats(n_files=n_read, n_skipped=skipped, n_val_files=n_val, train_chars=len(train_text),
                        val_chars=len(val_text), snippet_chars=0, folders=tuple(str(f) for f in folders))
    return SourceText(train_text, val_text, stats)


class TokenData:
    """Tokenised train/validation streams of source text and snippets, and the batch sampler."""

    def __init__(self, train_src: np.ndarray, val_src: np.ndarray, train_snip: np.ndarray,
                 val_snip: np.ndarray, snippet_frac: float, n_ctx: int, seed: int):
        self.streams = {"train": (train_src, train_snip), "val": (val_src, val_snip)}
        self.snippet_frac = snippet_frac
        self.n_ctx = n_ctx
        self.seed = seed
        for split, (src, snip) in self.streams.items():
            for name, arr in (("source", src), ("snippet", snip)):
                if len(arr) <= n_ctx + 1 and not (name == "snippet" and snippet_frac == 0) \
                        and not (name == "source" and snippet_frac == 1):
                    raise UserError(f"the {split} {name} text has only {len(arr)} tokens, fewer than the "
                                    f"context ({n_ctx}); add more files to the corpus")

    def to_blobs(self) -> tuple[dict, dict[str, bytes]]:
        """The streams as raw bytes plus a JSON-able header (to hand them to other processes)."""
        arrays = {f"{split}.{i}": np.ascontiguousarray(a) for split, pair in self.streams.items()
                  for i, a in enumerate(pair)}
        header = {"snippet_frac": self.snippet_frac, "n_ctx": self.n_ctx, "seed": self.seed,
                  "dtypes": {k: a.dtype.str for k, a in arrays.items()}}
        return header, {k: a.tobytes() for k, a in arrays.items()}

    @classmethod
    def from_blobs(cls, header: dict, blobs: dict[str, bytes]) -> "TokenData":
        a = {k: np.frombuffer(blobs[k], dtype=np.dtype(dt)) for k, dt in header["dtypes"].items()}
        return cls(a["train.0"], a["val.0"], a["train.1"], a["val.1"], header["snippet_frac"], header["n_ctx"],
                   header["seed"])

    def batch(self, step: int, batch_size: int, split: str = "train", rank: int = 0,
              world: int = 1) -> np.ndarray:
        """Token windows (batch_size // world, n_ctx + 1) for one step; rank r gets its slice of the
        global batch, so the union over ranks equals the single-process batch."""
        src, snip = self.streams[split]
        salt = 0 if split == "train" else 1_000_003
        rng = np.random.default_rng([self.seed, salt, step])
        T = self.n_ctx + 1
        use_snip = rng.random(batch_size) < self.snippet_frac
        off_src = rng.integers(0, max(1, len(src) - T), batch_size)
        off_snip = rng.integers(0, max(1, len(snip) - T), batch_size)
        lo, hi = rank * batch_size // world, (rank + 1) * batch_size // world
        rows = np.empty((hi - lo, T), dtype=np.int64)
        ar = np.arange(T)
        for out_i, i in enumerate(range(lo, hi)):
            stream, off = (snip, off_snip[i]) if use_snip[i] else (src, off_src[i])
            rows[out_i] = stream[off + ar]
        return rows


def snippet_budget(cfg: DataConfig, train_tokens: int) -> int:
    """Characters of snippets to generate: enough that sequences rarely repeat, up to the config's cap."""
    if cfg.snippet_frac <= 0:
        return 4096
    wanted = max(200_000, int(cfg.snippet_frac * train_tokens * 1.5))
    return min(wanted, cfg.snippet_max_chars) if cfg.snippet_max_chars else wanted


def generate_snippet_text(seed: int, n_chars: int) -> tuple[str, str]:
    """(train, val) snippet text; validation snippets come from a different seed."""
    return generate_snippets(seed, n_chars), generate_snippets(seed + 7919, max(50_000, n_chars // 20))
