"""The HDF5 activation store: its schema and the reader that the app and notebooks query.

A store holds what one model computes on ``N`` windows of ``T`` pretraining tokens: the tokens, every
site's activations (float16), per-site means, and per-node index tables built while recording (top-K
and bottom-K activations, a histogram, samples at fixed quantiles), plus every recorded task's
activations at the last prompt position. :mod:`engine.store.record` writes it; the schema is in the
README ("Activation store") and in :func:`engine.store.record._create` (the only place that creates
datasets).

Reading: :meth:`ActivationStore.open` loads the small tables (tokens, top-K, histograms, quantile
samples, means, vocabulary) into memory and keeps one h5py handle for the activation rows, which it
reads lazily, a (2w+1)-token window at a time, behind a lock. Every method returns plain numpy
arrays, frozen dataclasses or lists, never h5py objects, so a store may be shared by threads (h5py
serialises all calls anyway). Every error a user can cause (a missing, truncated, foreign or newer
file, a store of another model, an unknown node, site or task) is a :class:`UserError`.

Completion: a recording writes ``<out>.partial`` (HDF5 SWMR, root attribute ``complete = 0``) and
renames it to ``<out>`` only after it has set ``complete = 1``. A reader may open the ``.partial``
file while the recorder appends (``allow_incomplete=True``); it then sees the rows written so far
(``status[0]``), the running top-K and means, and the task activations, but no histograms or
quantile samples, which are computed at the end. A killed recording leaves a ``.partial`` file that
:meth:`ActivationStore.open` refuses unless ``allow_incomplete=True``.

Knows nothing about models, training or Qt.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from engine.errors import UserError
from engine.paths import derived_dir, resolve_run
from engine.sites import NodeId

SCHEMA_VERSION = 1
FORMAT = "circuit-inspector/activations"
STORE_FILE = "activations.h5"
PARTIAL_SUFFIX = ".partial"
#: Quantile levels with stored samples: bottom/top 0.1%, 1%, 10% and the median (the paper's viewer).
QUANTILE_LEVELS = (0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999)
HIST_BINS = 64
#: (example, position, value) rows of the top-K and quantile tables.
ENTRY_DTYPE = np.dtype([("example", "<i4"), ("position", "<i4"), ("value", "<f4")])
#: ``status`` dataset: [rows written, complete (0/1), rows covered by the top-K/means tables].
STATUS_ROWS, STATUS_COMPLETE, STATUS_TABLE_ROWS = 0, 1, 2
READ_CACHE_BYTES = 16 << 20


def default_store_path(run_dir: Path | str) -> Path:
    """Where a run's store lives: ``RUN/activations.h5`` if present there, else the derived folder
    (the run itself when writable, a per-user folder for bundled or read-only runs)."""
    run_dir = resolve_run(run_dir)
    own = run_dir / STORE_FILE
    return own if own.exists() else derived_dir(run_dir) / STORE_FILE


def partial_path(out: Path | str) -> Path:
    """The file a recording writes until it is complete: ``<out>.partial``."""
    out = Path(out)
    return out.with_name(out.name + PARTIAL_SUFFIX)


@dataclass(frozen=True, eq=False)
class Example:
    """One activation of a node with the token window around it (same example row only)."""

    example: int  # row of the store (a pretraining window)
    position: int  # token position in the row
    value: float  # the node's activation there (as stored, float16 precision)
    tokens: tuple[str, ...]  # display strings of the window's tokens
    values: np.ndarray  # (len(tokens),) float32, the node's activation at each token of the window
    center: int  # index of ``position`` in the window
    start: int  # position of the window's first token in the row


@dataclass(frozen=True)
class _SiteTables:
    width: int
    top: np.ndarray  # (width, K) ENTRY_DTYPE, most positive first; example -1 = not yet filled
    bottom: np.ndarray  # (width, K) ENTRY_DTYPE, most negative first
    means: np.ndarray  # (width,) float32
    counts: np.ndarray | None  # (width, bins) int32 (int64 past 2**31 tokens); None until complete
    hist_range: np.ndarray | None  # (width, 2) float32 [lo, hi]
    quantiles: np.ndarray | None  # (width, levels, samples) ENTRY_DTYPE


class ActivationStore:
    """Read-only view of one activation store. Use :meth:`open`; close it (or use ``with``)."""

    def __init__(self, path: Path, fh: h5py.File, allow_incomplete: bool):
        self.path = Path(path)
        self._fh = fh
        self._lock = threading.RLock()
        self._allow_incomplete = allow_incomplete
        self._task_cache: dict[tuple[str, str], np.ndarray] = {}
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, path: Path | str, expected_model_hash: str | None = None,
             allow_incomplete: bool = False) -> "ActivationStore":
        """Open a store; UserError if it is not a readable store, belongs to another model (when
        ``expected_model_hash`` is given), is newer than this program, or is incomplete (unless
        ``allow_incomplete``: a recording still running, cancelled or killed)."""
        path = Path(path).expanduser()
        if not path.exists():
            hint = (f" (a recording in progress writes {partial_path(path).name})"
                    if partial_path(path).exists() else "")
            raise UserError(f"activation store not found: {path}{hint}; record one with "
                            f"`circuit-engine record RUN`")
        store = cls(path, _open_h5(path), allow_incomplete)
        if expected_model_hash is not None and store.model_hash != expected_model_hash:
            store.close()
            raise UserError(f"activation store {path} was recorded for another model (hash "
                            f"{store.model_hash}, this run's model is {expected_model_hash}); record it "
                            f"again with `circuit-engine record RUN`")
        return store

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> "ActivationStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def refresh(self) -> None:
        """Re-read a store that a recorder is still writing (reopens the file; follows the rename of
        ``<out>.partial`` to ``<out>`` when the recording has finished)."""
        with self._lock:
            path = self.path
            if not path.exists() and path.name.endswith(PARTIAL_SUFFIX):
                final = path.with_name(path.name[: -len(PARTIAL_SUFFIX)])
                if final.exists():
                    path = final
            self.close()
            self._fh = _open_h5(path)
            self.path = path
            self._task_cache.clear()
            try:
                self._load()
            except BaseException:
                self.close()
                raise

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[h5py.File]:
        with self._lock:
            if self._fh is None:
                raise UserError(f"activation store {self.path} is closed")
            try:
                yield self._fh
            except (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError, AttributeError) as exc:
                raise UserError(f"activation store {self.path} is damaged ({what}: {' '.join(str(exc).split())}); "
                                f"record it again with `circuit-engine record RUN`") from None

    def _load(self) -> None:
        with self._reading("reading its header and index tables") as f:
            attrs = f.attrs
            if attrs.get("format") != FORMAT:
                raise UserError(f"{self.path} is an HDF5 file but not a Circuit Inspector activation store")
            version = int(attrs["schema_version"])
            if version > SCHEMA_VERSION or version < 1:
                raise UserError(f"activation store {self.path} has schema version {version}; this program "
                                f"reads versions 1..{SCHEMA_VERSION} (upgrade circuit-inspector)")
            self.schema_version = version  # v1 is the first version; later ones migrate v1 layouts here
            status = _array(f["status"], "status", (3,), "iu")
            self.complete = bool(attrs["complete"]) and bool(status[STATUS_COMPLETE])
            if not self.complete and not self._allow_incomplete:
                raise UserError(f"activation store {self.path} is incomplete (its recording was cancelled, "
                                f"crashed or is still running); record it again with `circuit-engine record RUN`")
            self.model_hash = str(attrs["model_hash"])
            self.run = str(attrs["run"])
            self.created = str(attrs["created"])
            self.sites: list[str] = [str(s) for s in _strings(attrs["sites"])]
            self.tasks: list[str] = [str(s) for s in _strings(attrs["tasks"])]
            self.seq_len = int(attrs["seq_len"])
            self.top_k = int(attrs["top_k"])
            self.quantile_levels = tuple(float(q) for q in attrs["quantile_levels"])
            self.n_examples = int(status[STATUS_ROWS])
            self.vocab: list[str] = [str(s) for s in _strings(f["vocab"][:])]
            if not 0 <= self.n_examples <= f["tokens"].shape[0] or self.seq_len < 1 or self.top_k < 1:
                raise ValueError(f"status says {self.n_examples} rows, the tokens table has {f['tokens'].shape[0]}")
            tokens = _array(f["tokens"], "tokens", (None, self.seq_len), "iu", rows=self.n_examples)
            if tokens.size and not (0 <= tokens.min() and tokens.max() < len(self.vocab)):
                raise ValueError(f"token ids outside the vocabulary of {len(self.vocab)}")
            self.tokens = tokens.astype(np.int32)  # (N, T)
            self.tokens.setflags(write=False)
            self._tables = {s: self._read_site(f, s) for s in self.sites}

    def _read_site(self, f: h5py.File, site: str) -> _SiteTables:
        """One site's index tables, each checked for its shape and dtype (ValueError if wrong)."""
        acts = f["sites"][site]
        if acts.ndim != 3 or acts.shape[1] != self.seq_len or acts.shape[0] < self.n_examples:
            raise ValueError(f"sites/{site} has shape {acts.shape}, not (>= {self.n_examples}, {self.seq_len}, width)")
        width, done = int(acts.shape[2]), self.complete
        top, bottom = (_entries(f["topk"][site][k], f"topk/{site}/{k}", (width, None)) for k in ("max", "min"))
        if top.shape[1] < 1 or bottom.shape[1] < 1:
            raise ValueError(f"topk/{site} tables are empty")
        levels = len(self.quantile_levels)
        return _SiteTables(
            width=width, top=top, bottom=bottom,
            means=_array(f["means"][site], f"means/{site}", (width,), "f").astype(np.float32),
            counts=_array(f["hist"][site]["counts"], f"hist/{site}/counts", (width, None), "iu") if done else None,
            hist_range=_array(f["hist"][site]["range"], f"hist/{site}/range", (width, 2), "f") if done else None,
            quantiles=_entries(f["quantiles"][site], f"quantiles/{site}", (width, levels, None)) if done else None)

    # ------------------------------------------------------------------ properties

    @property
    def n_tokens(self) -> int:
        return self.n_examples * self.seq_len

    def site_width(self, site: str) -> int:
        return self._site(site).width

    def info(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {"path": str(self.path), "schema_version": self.schema_version, "complete": self.complete,
                "run": self.run, "model_hash": self.model_hash, "created": self.created,
                "examples": self.n_examples, "seq_len": self.seq_len, "tokens": self.n_tokens,
                "top_k": self.top_k, "sites": {s: t.width for s, t in self._tables.items()},
                "tasks": list(self.tasks)}

    # ------------------------------------------------------------------ queries

    def _site(self, site: str) -> _SiteTables:
        t = self._tables.get(site)
        if t is None:
            raise UserError(f"unknown site {site!r}; this store has {', '.join(self.sites)}")
        return t

    def _node(self, node: NodeId | str) -> tuple[NodeId, _SiteTables]:
        node = NodeId.parse(node) if isinstance(node, str) else NodeId(*node)
        t = self._site(node.site)
        if not 0 <= node.index < t.width:
            raise UserError(f"node {node}: index out of range, {node.site} has channels 0..{t.width - 1}")
        return node, t

    def _examples(self, node: NodeId, entries: np.ndarray, window: int) -> list[Example]:
        if window < 0:
            raise UserError(f"window must be >= 0 tokens, got {window}")
        out = []
        T = self.seq_len
        with self._reading(f"reading activations of {node}") as f:
            ds = f["sites"][node.site]
            for e in entries:
                ex, pos = int(e["example"]), int(e["position"])
                if not (0 <= ex < self.n_examples and 0 <= pos < T):
                    continue  # not filled yet (a store still recording)
                lo, hi = max(0, pos - window), min(T, pos + window + 1)
                vals = np.asarray(ds[ex, lo:hi, node.index], dtype=np.float32)  # (hi - lo,)
                toks = tuple(self._tok(i) for i in self.tokens[ex, lo:hi])
                out.append(Example(ex, pos, float(vals[pos - lo]), toks, vals, pos - lo, lo))
        return out

    def _tok(self, i: int) -> str:
        return self.vocab[i] if 0 <= i < len(self.vocab) else "<?>"

    def top_examples(self, node: NodeId | str, k: int = 10, window: int = 12, bottom: bool = False) -> list[Example]:
        """The k most positive (``bottom``: most negative) activations of ``node``, strongest first,
        each with the +-``window`` tokens around it and the node's activation on each of them. At
        most :attr:`top_k` (the store's index size) are returned."""
        node, t = self._node(node)
        if k < 1:
            raise UserError(f"k must be at least 1, got {k}")
        table = t.bottom if bottom else t.top
        return self._examples(node, table[node.index, :k], window)

    def quantile_examples(self, node: NodeId | str, q: float, k: int | None = None, window: int = 12) -> list[Example]:
        """Activations of ``node`` near its ``q`` quantile (one of :attr:`quantile_levels`), estimated
        from a uniform sample of positions; highest value first."""
        node, t = self._node(node)
        level = self._level(q)
        if t.quantiles is None:
            raise UserError(self._incomplete_msg("quantile samples"))
        entries = t.quantiles[node.index, level]
        entries = entries[np.argsort(-entries["value"], kind="stable")]
        return self._examples(node, entries if k is None else entries[:k], window)

    def _level(self, q: float) -> int:
        for i, level in enumerate(self.quantile_levels):
            if abs(float(q) - level) < 1e-9:
                return i
        raise UserError(f"no samples at quantile {q}; the store has "
                        f"{', '.join(str(x) for x in self.quantile_levels)}")

    def _incomplete_msg(self, what: str) -> str:
        return (f"activation store {self.path} is still recording (or was cancelled): {what} are "
                f"computed when the recording finishes")

    def histogram(self, node: NodeId | str) -> tuple[np.ndarray, np.ndarray]:
        """(counts (bins,) int64, edges (bins+1,) float64) of all the node's stored activations; bins
        split [min, max] evenly, value x falls in bin clip(floor((x - min) * bins / (max - min)))."""
        node, t = self._node(node)
        if t.counts is None or t.hist_range is None:
            raise UserError(self._incomplete_msg("histograms"))
        lo, hi = (float(v) for v in t.hist_range[node.index])
        counts = t.counts[node.index].astype(np.int64)
        return counts, hist_edges(lo, hi, counts.shape[0])

    def value_range(self, node: NodeId | str) -> tuple[float, float]:
        """(min, max) of the node's activations (from the top-K tables; valid while recording)."""
        node, t = self._node(node)
        return float(t.bottom[node.index, 0]["value"]), float(t.top[node.index, 0]["value"])

    def means(self, site: str) -> np.ndarray:
        """Mean activation of every channel of ``site`` over all recorded positions, float32 (width,)."""
        return self._site(site).means.copy()

    def _task(self, task: str) -> None:
        if task not in self.tasks:
            known = ", ".join(self.tasks) if self.tasks else "none"
            raise UserError(f"task {task!r} was not recorded in {self.path} (recorded: {known}); "
                            f"record it with `circuit-engine record RUN --tasks {task}`")

    def task_activations(self, node: NodeId | str, task: str) -> tuple[np.ndarray, np.ndarray]:
        """The node's activation at the last prompt token of every pair: (side A (P,), side B (P,))."""
        node, _ = self._node(node)
        self._task(task)
        key = (task, node.site)
        acts = self._task_cache.get(key)
        if acts is None:
            with self._reading(f"reading task {task}") as f:
                acts = np.asarray(f["tasks"][task]["sites"][node.site][:], dtype=np.float32)  # (2P, width)
                if acts.ndim != 2 or acts.shape[0] % 2 or acts.shape[1] != self.site_width(node.site):
                    raise ValueError(f"tasks/{task}/sites/{node.site} has shape {acts.shape}")
            self._task_cache[key] = acts
        col = acts[:, node.index]
        return col[0::2].copy(), col[1::2].copy()

    def sample_activations(self, n: int = 512, seed: int = 0) -> dict[str, "torch.Tensor"]:
        """``{site: (n, width) float32 tensor}``: the activation vectors of n random recorded
        positions (distinct, fixed seed; all of them in a store of fewer), the replacement pool of
        resample ablation. Only those positions are read (:func:`gather_positions`): a
        csp_yolo1-sized store of 200,000 tokens costs 512 positions, not every window that holds
        one (tens of GB, which it read before)."""
        import torch

        total = self.n_examples * self.seq_len
        flat = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
        rows, pos = flat // self.seq_len, flat % self.seq_len
        with self._reading("sampling activations") as f:
            return {site: torch.from_numpy(gather_positions(f["sites"][site], rows, pos).astype(np.float32))
                    for site in self.sites}

    def task_prompts(self, task: str) -> list[tuple[str, str]]:
        """The recorded prompts of a task as (A, B) text pairs (token display strings joined)."""
        self._task(task)
        with self._reading(f"reading task {task}") as f:
            g = f["tasks"][task]
            toks, lengths = g["tokens"][:], g["lengths"][:]
        texts = ["".join(self._tok(i) for i in row[:n]) for row, n in zip(toks, lengths)]
        return list(zip(texts[0::2], texts[1::2]))


def gather_positions(ds: h5py.Dataset, rows: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``(len(rows), width)``: ``ds[rows[i], pos[i], :]`` of a (rows, positions, width) dataset, read
    position by position: only those values, never the windows around them (a union of slabs read at
    once was 6x slower here). Through h5py's low-level calls, one file selection moved along: 0.6 s
    for 512 positions of every csp_yolo1 site against 2.0 s with ``read_direct``, which builds its
    selections in Python on every call."""
    width = ds.shape[2]
    out = np.empty((len(rows), width), dtype=ds.dtype)
    file_space = ds.id.get_space()
    row_space = h5py.h5s.create_simple((width,))
    for i, (r, p) in enumerate(zip(rows.tolist(), pos.tolist())):
        file_space.select_hyperslab((r, p, 0), (1, 1, width))
        ds.id.read(row_space, file_space, out[i])
    return out


def hist_edges(lo: float, hi: float, bins: int) -> np.ndarray:
    """Bin edges of a stored histogram: [lo, hi] split evenly (a constant node gets [lo-0.5, lo+0.5])."""
    if not hi > lo:
        lo, hi = lo - 0.5, lo + 0.5
    return lo + (hi - lo) * np.arange(bins + 1, dtype=np.float64) / bins


def _array(ds: Any, name: str, shape: tuple[int | None, ...], kinds: str, rows: int | None = None) -> np.ndarray:
    """A dataset read whole (or its first ``rows``), checked: ``shape`` (None = any length there) and a
    dtype kind in ``kinds`` ('f' float, 'i'/'u' integer); a ValueError naming it otherwise."""
    if not isinstance(ds, h5py.Dataset):
        raise ValueError(f"{name} is not a dataset")
    ok = len(ds.shape) == len(shape) and all(want is None or got == want for got, want in zip(ds.shape, shape))
    if not ok or ds.dtype.kind not in kinds:
        raise ValueError(f"{name} is {ds.dtype} of shape {ds.shape}, expected shape "
                         f"{tuple('*' if d is None else d for d in shape)}")
    return ds[:rows] if rows is not None else ds[()]


def _entries(ds: Any, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """A table of (example, position, value) entries (ENTRY_DTYPE), checked like :func:`_array`."""
    if not isinstance(ds, h5py.Dataset) or ds.dtype.names != ENTRY_DTYPE.names:
        raise ValueError(f"{name} is not a table of (example, position, value) entries")
    if len(ds.shape) != len(shape) or any(want is not None and got != want for got, want in zip(ds.shape, shape)):
        raise ValueError(f"{name} has shape {ds.shape}, expected {tuple('*' if d is None else d for d in shape)}")
    return np.asarray(ds[()], dtype=ENTRY_DTYPE)


def _strings(values: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values)]


def _open_h5(path: Path) -> h5py.File:
    """Open for reading. A finished file opens normally (HDF5 then checks that it is not truncated);
    a file that a recorder holds open for writing (or left so when it was killed) is flagged "open for
    write" and opens in SWMR read mode instead."""
    if path.is_dir():
        raise UserError(f"activation store {path} is a folder, not a file; give the store file itself")
    try:
        try:
            return h5py.File(path, "r", rdcc_nbytes=READ_CACHE_BYTES)
        except OSError as exc:
            if "already open for write" not in str(exc):
                raise
            return h5py.File(path, "r", swmr=True, rdcc_nbytes=READ_CACHE_BYTES)
    except OSError as exc:
        text = str(exc).lower()
        if "truncated" in text:
            raise UserError(f"activation store {path} is truncated (an interrupted copy or download?); "
                            f"record it again with `circuit-engine record RUN`") from None
        if "unable to lock file" in text:
            raise UserError(f"activation store {path} is being created by another process; open it again "
                            f"in a moment") from None
        raise UserError(f"{path} is not a readable HDF5 activation store ({' '.join(str(exc).split())}); "
                        f"record one with `circuit-engine record RUN`") from None
