"""Recording an activation store: run a model over pretraining windows and task prompts and write
the HDF5 file that :mod:`engine.store.activations` reads.

:func:`record_store` is a generator of :class:`RecordEvent` (at most ~20 per second) that returns
the store's path; cancel by closing it. Phases:

1. *tasks*, *setup*: encode the task pairs and record their activations at the last prompt token;
   read the pretraining text (the run's own corpus and tokenizer, the same windows as the ablation
   means of :mod:`engine.ablation.means`);
2. create ``<out>.partial`` with every dataset (fixed-size tables filled with "empty" markers,
   row-growable ``tokens`` and ``sites/<site>``), then switch on HDF5 SWMR so that readers in other
   processes can open it;
3. *record*: per batch, append the tokens and float16 activations, merge the batch into the running
   per-node top-K / bottom-K (values kept as their float16 roundings, so the index agrees with the
   rows), accumulate the means (of the float32 activations), keep the values at a fixed uniform
   sample of positions, and flush; the top-K tables and means are rewritten about once a second;
4. *finalize*: one sequential pass over the stored rows for exact per-node histograms (64 bins over
   each node's [min, max]), quantile samples from the position sample, ``complete = 1``, then the
   atomic rename of ``<out>.partial`` to ``<out>``.

A cancelled or failed recording deletes its ``.partial`` file in ``finally``; a killed process leaves a
``.partial`` file with ``complete = 0`` that readers refuse (or report as incomplete) and the next
recording overwrites. Knows nothing about Qt or printing.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generator, Sequence

import h5py
import numpy as np
import torch

from engine.errors import UserError
from engine.fileio import check_free_space, check_output_file
from engine.runs import LoadedRun, load_run, run_tokenizer
from engine.sites import all_sites, intervene, site_width, store_bytes
from engine.store.activations import (ENTRY_DTYPE, FORMAT, HIST_BINS, PARTIAL_SUFFIX, QUANTILE_LEVELS, SCHEMA_VERSION,
                          STATUS_COMPLETE, STATUS_ROWS, STATUS_TABLE_ROWS, default_store_path, partial_path)
from engine.tasks.lookup import EncodedTask, encode_task, get_task, load_task_file

if TYPE_CHECKING:  # only recording reads the corpus (a late import in record_store)
    from engine.data.corpus import TokenData

EVENT_INTERVAL_S = 0.05  # at most ~20 events per second
TABLE_INTERVAL_S = 1.0  # how often the running top-K tables and means are rewritten while recording
CHUNK_BYTES = 256 << 10  # target size of one chunk of sites/<site>
WRITE_CACHE_BYTES = 64 << 20  # HDF5 chunk cache of the writer
QUANTILE_SAMPLE = 8192  # positions in the uniform sample behind the quantile tables
QUANTILE_PER_LEVEL = 8  # examples stored per node and quantile level
DATA_STEP_BASE = 10_000_000  # TokenData.batch step of the first window (as in engine.ablation.means)
TASK_SPLIT = "val"
HIST_BLOCK_BYTES = 32 << 20  # rows read at once by the histogram pass


@dataclass(frozen=True)
class RecordEvent:
    """One progress report. ``kind``: setup | tasks | record | finalize | done."""

    kind: str
    done_tokens: int
    total_tokens: int
    message: str = ""
    write_bytes: int = 0  # bytes of tokens and activations written so far
    write_seconds: float = 0.0  # seconds spent inside HDF5 writes and flushes so far

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _TaskData:
    name: str
    description: str
    enc: EncodedTask
    acts: dict[str, np.ndarray]  # site -> (2P, width) float32 at the last prompt token
    logit_diff: np.ndarray  # (2P,) float32, target - foil logit


def _entry_fill(shape: tuple[int, ...]) -> np.ndarray:
    a = np.empty(shape, dtype=ENTRY_DTYPE)
    a["example"], a["position"], a["value"] = -1, -1, np.nan
    return a


@torch.no_grad()
def _capture(model: torch.nn.Module, idx: torch.Tensor,
             sites: Sequence[str]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Logits (B, T, V) and every site's activation (B, T, width) for token ids idx (B, T)."""
    cap: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(x: torch.Tensor) -> torch.Tensor:
            cap[name] = x.detach()
            return x
        return hook

    with intervene({s: keep(s) for s in sites}):
        logits = model(idx)
    return cap, logits


def _record_tasks(run: LoadedRun, names: Sequence[str], n_pairs: int, seed: int, sites: list[str],
                  device: torch.device, batch: int = 128) -> list[_TaskData]:
    out: list[_TaskData] = []
    for name in dict.fromkeys(names):
        task = load_task_file(Path(name)) if str(name).endswith(".json") else get_task(name)
        if any(t.name == task.name for t in out):
            continue
        enc = encode_task(run_tokenizer(run), task.pairs(TASK_SPLIT, n_pairs, seed), run.config.model.n_ctx, task.name)
        acts: dict[str, list[np.ndarray]] = {s: [] for s in sites}
        diffs = []
        for s0 in range(0, enc.n, batch):
            lengths = enc.lengths[s0:s0 + batch]
            idx = torch.as_tensor(enc.tokens[s0:s0 + batch, : int(lengths.max())]).to(device)
            cap, logits = _capture(run.model, idx, sites)
            rows, pos = torch.arange(len(lengths)), torch.as_tensor(lengths - 1)
            for s in sites:
                acts[s].append(cap[s][rows, pos].float().cpu().numpy())  # (b, width)
            last = logits[rows, pos].float().cpu()  # (b, V)
            tgt, foil = torch.as_tensor(enc.target[s0:s0 + batch]), torch.as_tensor(enc.foil[s0:s0 + batch])
            diffs.append((last.gather(1, tgt.view(-1, 1)) - last.gather(1, foil.view(-1, 1)))[:, 0].numpy())
        out.append(_TaskData(task.name, task.description, enc, {s: np.concatenate(v) for s, v in acts.items()},
                             np.concatenate(diffs).astype(np.float32)))
    return out


def _site_chunks(n_rows: int, T: int, width: int) -> tuple[int, int, int]:
    """Chunks of sites/<site>: whole rows, about CHUNK_BYTES each (never more rows than the store has)."""
    row_bytes = T * width * 2
    if row_bytes <= CHUNK_BYTES:
        return max(1, min(n_rows, CHUNK_BYTES // row_bytes)), T, width
    return 1, max(1, CHUNK_BYTES // (width * 2)), width


def _create(path: Path, run: LoadedRun, sites: list[str], widths: dict[str, int], n_rows: int, T: int,
            top_k: int, n_sample: int, tasks: list[_TaskData], extra_attrs: dict[str, Any]) -> h5py.File:
    """Create every group and dataset of the schema, then switch on SWMR (no object may be created
    after that)."""
    f = h5py.File(path, "w", libver=("v110", "v110"), rdcc_nbytes=WRITE_CACHE_BYTES)
    try:
        strings = h5py.string_dtype()
        a = f.attrs
        a["format"] = FORMAT
        a["schema_version"] = SCHEMA_VERSION
        a["complete"] = 0
        a["run"] = str(run.path)
        a["model_hash"] = run.model_hash
        a["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        a["seq_len"] = T
        a["n_examples"] = n_rows
        a["top_k"] = top_k
        a["hist_bins"] = HIST_BINS
        a["quantile_levels"] = np.asarray(QUANTILE_LEVELS, dtype=np.float64)
        a["quantile_sample"] = n_sample
        a["quantile_per_level"] = QUANTILE_PER_LEVEL
        a["sites"] = np.asarray(sites, dtype=strings)
        a["tasks"] = np.asarray([t.name for t in tasks], dtype=strings)
        tok = run_tokenizer(run)
        a["tokenizer"] = tok.kind
        a.update(extra_attrs)
        vocab = [tok.token_str(i) for i in range(tok.vocab_size)]
        f.create_dataset("vocab", data=np.asarray(vocab, dtype=strings))
        f.create_dataset("status", data=np.zeros(3, dtype=np.int64))
        f.create_dataset("tokens", shape=(0, T), maxshape=(None, T), dtype=np.int32,
                         chunks=(max(1, min(n_rows, 4096 // T + 1)), T))
        n_levels = len(QUANTILE_LEVELS)
        count_dtype = np.int32 if n_rows * T < 2**31 else np.int64
        for s in sites:
            w = widths[s]
            f.create_dataset(f"sites/{s}", shape=(0, T, w), maxshape=(None, T, w), dtype=np.float16,
                             chunks=_site_chunks(n_rows, T, w))
            f.create_dataset(f"means/{s}", data=np.zeros(w, dtype=np.float32))
            f.create_dataset(f"topk/{s}/max", data=_entry_fill((w, top_k)))
            f.create_dataset(f"topk/{s}/min", data=_entry_fill((w, top_k)))
            f.create_dataset(f"hist/{s}/counts", data=np.zeros((w, HIST_BINS), dtype=count_dtype))
            f.create_dataset(f"hist/{s}/range", data=np.zeros((w, 2), dtype=np.float32))
            f.create_dataset(f"quantiles/{s}", data=_entry_fill((w, n_levels, min(QUANTILE_PER_LEVEL, n_sample))))
        f.require_group("tasks")
        for t in tasks:
            g = f.create_group(f"tasks/{t.name}")
            g.attrs.update({"description": t.description, "split": TASK_SPLIT, "pairs": len(t.enc.pairs)})
            g.create_dataset("tokens", data=t.enc.tokens.astype(np.int32))
            for key in ("lengths", "target", "foil"):
                g.create_dataset(key, data=getattr(t.enc, key).astype(np.int32))
            g.create_dataset("logit_diff", data=t.logit_diff)
            for s in sites:
                g.create_dataset(f"sites/{s}", data=t.acts[s].astype(np.float32))
        f.flush()
        f.swmr_mode = True
        return f
    except BaseException:
        f.close()
        path.unlink(missing_ok=True)
        raise


class _RunningSite:
    """Running top-K / bottom-K, sums and the position sample of one site.

    Ranking uses the float32 activations; the values kept are their float16 roundings (what the
    rows store). Rounding is monotone, so this is also a top-K of the stored values (ties aside).
    """

    def __init__(self, width: int, top_k: int, n_sample: int):
        self.top_v = torch.full((width, top_k), -math.inf)  # (width, K), best first
        self.top_i = torch.full((width, top_k), -1, dtype=torch.int64)  # flat index row * T + position
        self.bot_v = torch.full((width, top_k), math.inf)
        self.bot_i = torch.full((width, top_k), -1, dtype=torch.int64)
        self.sums = torch.zeros(width, dtype=torch.float64)
        self.sample = np.zeros((n_sample, width), dtype=np.float16)

    @staticmethod
    def _merge(best_v: torch.Tensor, best_i: torch.Tensor, xt: torch.Tensor, base: int, largest: bool):
        k = min(best_v.shape[1], xt.shape[1])
        v, i = xt.topk(k, dim=1, largest=largest)  # (width, k)
        cand_v, cand_i = torch.cat([best_v, v], 1), torch.cat([best_i, i + base], 1)
        top = cand_v.topk(best_v.shape[1], dim=1, largest=largest)
        return top.values, cand_i.gather(1, top.indices)

    def update(self, x: torch.Tensor, x16: np.ndarray, base: int, sample_at: slice, local: np.ndarray) -> None:
        """x: (R, width) float32 activations, x16 (R, width) their float16 as stored, base: flat index of row 0."""
        xt = x.T.contiguous()  # (width, R)
        self.top_v, self.top_i = self._merge(self.top_v, self.top_i, xt, base, True)
        self.bot_v, self.bot_i = self._merge(self.bot_v, self.bot_i, xt, base, False)
        self.sums += x.sum(0).double()
        self.sample[sample_at] = x16[local]

    def value_range(self) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) per channel of the stored (float16) values, as float32 (width,)."""
        return (self.bot_v[:, 0].half().float().numpy(), self.top_v[:, 0].half().float().numpy())

    def entries(self, T: int, bottom: bool) -> np.ndarray:
        v, i = (self.bot_v, self.bot_i) if bottom else (self.top_v, self.top_i)
        out = _entry_fill(tuple(v.shape))  # (width, K)
        i = i.numpy()
        ok = i >= 0
        out["example"][ok] = i[ok] // T
        out["position"][ok] = i[ok] % T
        out["value"][ok] = v.half().float().numpy()[ok]
        return out


def bin_counts(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    """Histogram counts (width, bins) of x (R, width): value v of node j goes to bin
    clip(floor((v - lo_j) * bins / (hi_j - lo_j)), 0, bins - 1); a node with hi == lo uses [lo-0.5, lo+0.5]."""
    lo = lo.astype(np.float32)
    span = np.where(hi > lo, hi - lo, 1.0).astype(np.float32)
    lo_e = np.where(hi > lo, lo, lo - 0.5).astype(np.float32)
    idx = np.floor((x.astype(np.float32) - lo_e) * (bins / span)).astype(np.intp)  # (R, width)
    np.clip(idx, 0, bins - 1, out=idx)
    idx += bins * np.arange(x.shape[1], dtype=np.intp)
    return np.bincount(idx.ravel(), minlength=x.shape[1] * bins).reshape(x.shape[1], bins)


def _quantile_entries(sample: np.ndarray, positions: np.ndarray, T: int) -> np.ndarray:
    """(width, levels, S) entries nearest each quantile level of the sample (m, width) taken at the
    flat positions ``positions`` (m,)."""
    m, width = sample.shape
    st = np.ascontiguousarray(sample.T, dtype=np.float32)  # (width, m)
    order = np.argsort(st, axis=1, kind="stable")  # (width, m)
    S = min(QUANTILE_PER_LEVEL, m)
    out = _entry_fill((width, len(QUANTILE_LEVELS), S))
    for li, q in enumerate(QUANTILE_LEVELS):
        start = min(max(0, int(round(q * (m - 1))) - S // 2), m - S)
        picks = order[:, start:start + S]  # (width, S) indices into the sample
        flat = positions[picks]
        out["example"][:, li] = flat // T
        out["position"][:, li] = flat % T
        out["value"][:, li] = np.take_along_axis(st, picks, axis=1)
    return out


def _validate(n_tokens: int, batch_size: int, top_k: int, n_pairs: int) -> None:
    for name, v, lo in (("tokens", n_tokens, 1), ("batch size", batch_size, 1), ("top-k", top_k, 1),
                        ("pairs", n_pairs, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise UserError(f"the number of {name} must be a whole number >= {lo}, got {v!r}")


class _Writer:
    """The open ``.partial`` file of one recording and its running per-node state."""

    def __init__(self, f: h5py.File, widths: dict[str, int], T: int, top_k: int, sample_pos: np.ndarray):
        self.f, self.widths, self.T, self.sample_pos = f, widths, T, sample_pos
        self.state = {s: _RunningSite(w, top_k, len(sample_pos)) for s, w in widths.items()}
        self.status = f["status"]
        self.write_s, self.write_bytes = 0.0, 0

    def _timed(self, fn) -> None:
        t0 = time.perf_counter()
        fn()
        self.write_s += time.perf_counter() - t0

    def append(self, r0: int, rows: np.ndarray, cap: dict[str, torch.Tensor]) -> None:
        """Append token rows (R, T) and their activations; update the running tables; flush."""
        f, T = self.f, self.T
        r1 = r0 + rows.shape[0]
        a, z = np.searchsorted(self.sample_pos, [r0 * T, r1 * T])
        local = self.sample_pos[a:z] - r0 * T

        def write(name: str, arr: np.ndarray) -> None:
            f[name].resize(r1, axis=0)
            f[name][r0:r1] = arr

        self._timed(lambda: write("tokens", rows.astype(np.int32)))
        self.write_bytes += rows.size * 4
        for s, w in self.widths.items():
            x = cap[s].float().cpu().reshape(-1, w)  # (R*T, width)
            x16 = x.half().numpy()
            self._timed(lambda: write(f"sites/{s}", x16.reshape(-1, T, w)))
            self.write_bytes += x16.nbytes
            self.state[s].update(x, x16, r0 * T, slice(a, z), local)
        self._timed(lambda: self._set_status(STATUS_ROWS, r1))

    def _set_status(self, i: int, value: int) -> None:
        self.f.flush()  # data first, then the status that points at it
        self.status[i] = value
        self.f.flush()

    def write_tables(self, rows: int) -> None:
        """Rewrite the top-K tables and means from the running state (covering ``rows`` rows)."""
        for s, st in self.state.items():
            self.f[f"topk/{s}/max"][...] = st.entries(self.T, bottom=False)
            self.f[f"topk/{s}/min"][...] = st.entries(self.T, bottom=True)
            self.f[f"means/{s}"][...] = (st.sums / (rows * self.T)).float().numpy()
        self._set_status(STATUS_TABLE_ROWS, rows)

    def finalize_site(self, s: str) -> None:
        """Exact histograms (one pass over the stored rows) and quantile samples of one site."""
        w, T = self.widths[s], self.T
        lo, hi = self.state[s].value_range()
        counts = np.zeros((w, HIST_BINS), dtype=np.int64)
        ds = self.f[f"sites/{s}"]
        step = max(1, HIST_BLOCK_BYTES // (T * w * 2))
        for h0 in range(0, ds.shape[0], step):
            counts += bin_counts(ds[h0:h0 + step].reshape(-1, w), lo, hi)
        self.f[f"hist/{s}/counts"][...] = counts
        self.f[f"hist/{s}/range"][...] = np.stack([lo, hi], axis=1).astype(np.float32)
        self.f[f"quantiles/{s}"][...] = _quantile_entries(self.state[s].sample, self.sample_pos, T)

    def mark_complete(self) -> None:
        self.f.flush()
        self.f.attrs["complete"] = 1
        self._set_status(STATUS_COMPLETE, 1)

    def event(self, kind: str, done: int, total: int, message: str = "") -> RecordEvent:
        return RecordEvent(kind, done, total, message, self.write_bytes, self.write_s)


def _store_path(run: LoadedRun, out: Path | str | None) -> Path:
    """Where the store goes: ``out``, or :func:`default_store_path` of the run."""
    out = Path(out).expanduser() if out is not None else default_store_path(run.path)
    if out.name.endswith(PARTIAL_SUFFIX):
        raise UserError(f"{out}: choose a store name that does not end in {PARTIAL_SUFFIX}")
    return out


def _create_partial(tmp: Path, run: LoadedRun, sites: list[str], widths: dict[str, int], n_rows: int,
                    top_k: int, n_sample: int, task_data: list[_TaskData], seed: int,
                    batch_size: int) -> h5py.File:
    """Phase 2: the ``.partial`` file with every dataset, open for writing (a UserError if it cannot
    be created)."""
    T = run.config.model.n_ctx
    try:
        return _create(tmp, run, sites, widths, n_rows, T, top_k, n_sample, task_data,
                       {"seed": seed, "batch_size": batch_size, "n_tokens": n_rows * T, "data_split": "train",
                        "data_seed": run.config.train.seed, "data_step_base": DATA_STEP_BASE})
    except OSError as exc:
        raise UserError(f"cannot create {tmp} ({exc}); is another recording writing it?") from None


def _record_windows(wr: _Writer, model: torch.nn.Module, data: TokenData, sites: list[str], device: torch.device,
                    n_rows: int, batch_size: int) -> Generator[RecordEvent, None, float]:
    """Phase 3: record the windows batch by batch (an event at most every EVENT_INTERVAL_S, the tables
    rewritten about every TABLE_INTERVAL_S and at the end) -> the time of the last event."""
    T = wr.T
    total = n_rows * T
    last_event = last_table = time.monotonic()
    for b, r0 in enumerate(range(0, n_rows, batch_size)):
        rows = data.batch(DATA_STEP_BASE + b, batch_size)[: n_rows - r0, :-1]  # (R, T)
        cap, _ = _capture(model, torch.from_numpy(np.ascontiguousarray(rows)).to(device), sites)
        wr.append(r0, rows, cap)
        r1, now = r0 + rows.shape[0], time.monotonic()
        if now - last_table >= TABLE_INTERVAL_S and r1 < n_rows:
            last_table = now
            wr.write_tables(r1)
        if now - last_event >= EVENT_INTERVAL_S or r1 == n_rows:
            last_event = now
            yield wr.event("record", r1 * T, total)
    wr.write_tables(n_rows)
    return last_event


def _finalize(wr: _Writer, sites: list[str], total: int, last_event: float) -> Generator[RecordEvent, None, None]:
    """Phase 4: histograms and quantile samples site by site, then mark the file complete."""
    yield wr.event("finalize", total, total, "computing histograms and quantile samples")
    for s in sites:
        wr.finalize_site(s)
        if time.monotonic() - last_event >= EVENT_INTERVAL_S:
            last_event = time.monotonic()
            yield wr.event("finalize", total, total)
    wr.mark_complete()


def _discard(f: h5py.File | None, tmp: Path | None) -> None:
    """Close ``f`` if it is still open and delete the unfinished ``tmp`` (if any)."""
    if f is not None:
        try:
            f.close()
        except Exception:  # noqa: BLE001 - the file is deleted just below
            pass
    if tmp is not None:
        tmp.unlink(missing_ok=True)


def record_store(run: LoadedRun | str | Path, out: Path | str | None = None, n_tokens: int = 200_000,
                 tasks: Sequence[str] = (), batch_size: int = 32, top_k: int = 20, seed: int = 0,
                 n_pairs: int = 64) -> Generator[RecordEvent, None, Path]:
    """Record an activation store of ``run`` at ``out`` (default: :func:`default_store_path`).

    ``n_tokens`` is rounded up to whole windows of the model's context. ``tasks``: built-in task
    names or task files (``.json``); ``n_pairs`` held-out pairs of each are recorded.
    """
    _validate(n_tokens, batch_size, top_k, n_pairs)
    run = run if isinstance(run, LoadedRun) else load_run(run)
    out = check_output_file(_store_path(run, out), "activation store", create_folder=out is None)
    cfg = run.config.model
    T, sites = cfg.n_ctx, all_sites(cfg)
    widths = {s: site_width(cfg, s) for s in sites}
    n_rows = max(1, math.ceil(n_tokens / T))
    total = n_rows * T
    size = store_bytes(total, sum(widths.values()))
    check_free_space(out, size, f"recording {total:,} tokens",
                     "record fewer tokens (--tokens) or choose another --out")
    device = next(run.model.parameters()).device
    if tasks:
        yield RecordEvent("tasks", 0, total, message=f"recording {len(tasks)} task(s), {n_pairs} pairs each")
    task_data = _record_tasks(run, tasks, n_pairs, seed, sites, device)
    yield RecordEvent("setup", 0, total, message="reading pretraining text")
    from engine.train.data import prepare_data  # late import: only recording reads the corpus

    _, data, _ = prepare_data(run.config, run_tokenizer(run))
    n_sample = min(QUANTILE_SAMPLE, total)
    sample_pos = np.sort(np.random.default_rng([seed, 7]).choice(total, n_sample, replace=False)).astype(np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(out)
    f: h5py.File | None = None
    created = finished = False
    try:
        f = _create_partial(tmp, run, sites, widths, n_rows, min(top_k, total), n_sample, task_data, seed,
                            batch_size)
        created = True
        wr = _Writer(f, widths, T, min(top_k, total), sample_pos)
        yield wr.event("setup", 0, total, f"recording {total:,} tokens ({n_rows} windows of {T}; about "
                                          f"{size / 1e9:.2g} GB of activations) into {tmp}")
        last_event = yield from _record_windows(wr, run.model, data, sites, device, n_rows, batch_size)
        yield from _finalize(wr, sites, total, last_event)
        f.close()
        f = None
        os.replace(tmp, out)
        finished = True
        yield wr.event("done", total, total, f"wrote {out}")
        return out
    finally:
        _discard(f, tmp if created and not finished else None)
