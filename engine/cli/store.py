"""Command line and benchmark of the activation store: ``circuit-engine record``, ``circuit-engine
node`` and ``circuit-engine bench store``.

:func:`register` adds the ``record`` subcommand to the CLI's subparsers; :func:`bench_store` records
a store into a temporary folder and times it and a mix of queries. Progress goes to stderr; the
handlers return dicts (the CLI prints them, or one JSON line with ``--json``). Knows nothing about Qt.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from engine.errors import UserError


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _run_recording(gen, print_every: float = 2.0, quiet: bool = False) -> tuple[Path, Any, float]:
    """Drive a record_store generator; returns (store path, last event, seconds)."""
    t0 = time.monotonic()
    last_print = 0.0
    last = None
    try:
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                return stop.value, last, time.monotonic() - t0
            last = ev
            if quiet:
                continue
            now = time.monotonic()
            if ev.message:
                _err(ev.message)
            elif ev.kind == "record" and (now - last_print >= print_every or ev.done_tokens == ev.total_tokens):
                last_print = now
                rate = ev.write_bytes / ev.write_seconds / 1e6 if ev.write_seconds else 0.0
                _err(f"  recorded {ev.done_tokens:,}/{ev.total_tokens:,} tokens "
                     f"({100 * ev.done_tokens / max(1, ev.total_tokens):.0f}%)  write {rate:.0f} MB/s")
    except KeyboardInterrupt:
        gen.close()  # deletes the .partial file
        _err("cancelled; the partial store was deleted")
        raise SystemExit(130)


def cmd_record(args: argparse.Namespace) -> dict[str, Any]:
    from engine.store.record import record_store
    from engine.store.activations import ActivationStore
    from engine.tasks.lookup import list_tasks

    tasks = [t.name for t in list_tasks()] if args.tasks is None else list(args.tasks)
    gen = record_store(args.run, args.out, n_tokens=args.tokens, tasks=tasks, batch_size=args.batch_size,
                       top_k=args.top_k, n_pairs=args.pairs)
    path, ev, seconds = _run_recording(gen, args.print_every)
    with ActivationStore.open(path) as st:
        info = st.info()
    return {"store": str(path), "run": info["run"], "complete": info["complete"], "tokens": info["tokens"],
            "examples": info["examples"], "seq_len": info["seq_len"], "sites": len(info["sites"]),
            "nodes": sum(info["sites"].values()), "tasks": info["tasks"], "top_k": info["top_k"],
            "size_mb": round(path.stat().st_size / 1e6, 2), "seconds": round(seconds, 2),
            "write_mb_per_s": round(ev.write_bytes / ev.write_seconds / 1e6, 1) if ev and ev.write_seconds else None}


def cmd_node(args: argparse.Namespace) -> dict[str, Any]:
    """What one node responds to, from the run's activation store."""
    from engine.checkpoint import MODEL_FILE, file_hash
    from engine.runs import check_run_dir
    from engine.store.activations import ActivationStore, default_store_path

    run_dir = check_run_dir(args.run)
    weights = run_dir / MODEL_FILE
    if not weights.exists():
        raise UserError(f"{run_dir} has no trained model yet ({MODEL_FILE} missing)")
    path = args.store or default_store_path(run_dir)
    with ActivationStore.open(path, expected_model_hash=file_hash(weights)) as st:
        def rows(bottom: bool) -> list[dict[str, Any]]:
            return [{"example": e.example, "position": e.position, "value": e.value, "center": e.center,
                     "tokens": list(e.tokens), "values": [round(float(v), 5) for v in e.values]}
                    for e in st.top_examples(args.node, k=args.k, window=args.window, bottom=bottom)]
        counts, edges = st.histogram(args.node)
        tasks = {}
        for t in st.tasks:
            a, b = st.task_activations(args.node, t)
            tasks[t] = {"a_mean": float(a.mean()), "b_mean": float(b.mean())}
        return {"node": args.node, "store": str(st.path), "top": rows(False), "bottom": rows(True),
                "histogram": {"counts": counts.tolist(), "edges": edges.tolist()}, "tasks": tasks}


def _print_node(r: dict[str, Any]) -> None:
    print(f"node {r['node']}  (store {r['store']})")
    for side in ("top", "bottom"):
        print(f"{side} activations:")
        for e in r[side]:
            toks = list(e["tokens"])
            toks[e["center"]] = f"[{toks[e['center']]}]"
            print(f"  {e['value']:+9.4f}  ex {e['example']:>6} pos {e['position']:>4}  {''.join(toks)}")
    for t, v in r["tasks"].items():
        print(f"task {t:<28} A mean {v['a_mean']:+.4f}   B mean {v['b_mean']:+.4f}")


def register(subparsers: Any) -> None:
    """Add ``record`` to the CLI (``subparsers`` from ``ArgumentParser.add_subparsers``)."""
    r = subparsers.add_parser("record", help="record an activation store (HDF5) of a run for the inspector")
    r.add_argument("run", help="run folder, or demo / demo-dense")
    r.add_argument("--tokens", type=int, default=200_000, help="pretraining tokens to record (default 200000)")
    r.add_argument("--tasks", nargs="*", metavar="NAME",
                   help="tasks (names or .json task files) whose pairs to record; default: all built-in "
                        "tasks; give --tasks with no names for none")
    r.add_argument("--pairs", type=int, default=64, help="held-out pairs per task (default 64)")
    r.add_argument("--out", type=Path, help="store file (default RUN/activations.h5, or the per-user data "
                                            "folder for a read-only run)")
    r.add_argument("--top-k", type=int, default=20, help="top/bottom activations indexed per node (default 20)")
    r.add_argument("--batch-size", type=int, default=32, help="windows per forward pass (default 32)")
    r.add_argument("--print-every", type=float, default=2.0, help="seconds between progress lines")
    r.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    r.set_defaults(func=cmd_record)

    n = subparsers.add_parser("node", help="top/bottom activating snippets of one node, from the activation store")
    n.add_argument("run", help="run folder, or demo / demo-dense")
    n.add_argument("node", help="SITE:INDEX, e.g. blocks.0.mlp.neuron:12")
    n.add_argument("--store", type=Path, help="store file (default: the run's activations.h5)")
    n.add_argument("-k", type=int, default=5, help="examples per side (default 5)")
    n.add_argument("--window", type=int, default=12, help="tokens shown either side (default 12)")
    n.add_argument("--json", action="store_true")
    n.set_defaults(func=cmd_node, printer=_print_node)


# ---------------------------------------------------------------------------------------------
# Benchmark


def _percentiles(ms: Sequence[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 4), "p95": round(float(np.percentile(a, 95)), 4),
            "max": round(float(a.max()), 4), "n": int(a.size)}


def _query_mix(st, n_queries: int, seed: int) -> dict[str, list[float]]:
    """Time random queries (top/bottom examples, quantile samples, histogram, task activations,
    means) on random nodes; returns milliseconds per query kind."""
    from engine.sites import NodeId

    rng = np.random.default_rng(seed)
    levels = st.quantile_levels
    kinds: dict[str, Callable[[NodeId], Any]] = {
        "top_examples": lambda n: st.top_examples(n, k=10, window=12),
        "bottom_examples": lambda n: st.top_examples(n, k=10, window=12, bottom=True),
        "quantile_examples": lambda n: st.quantile_examples(n, levels[int(rng.integers(len(levels)))]),
        "histogram": lambda n: st.histogram(n),
        "means": lambda n: st.means(n.site),
    }
    if st.tasks:
        kinds["task_activations"] = lambda n: st.task_activations(n, st.tasks[int(rng.integers(len(st.tasks)))])
    names = list(kinds)
    times: dict[str, list[float]] = {k: [] for k in names}
    for i in range(n_queries + 20):
        site = st.sites[int(rng.integers(len(st.sites)))]
        node = NodeId(site, int(rng.integers(st.site_width(site))))
        kind = names[i % len(names)]
        t0 = time.perf_counter()
        kinds[kind](node)
        dt = (time.perf_counter() - t0) * 1000
        if i >= 20:  # the first queries warm the chunk cache
            times[kind].append(dt)
    return times


def bench_store(run: str | Path = "demo", n_tokens: int = 200_000, n_queries: int = 600,
                tasks: Sequence[str] = ("single_double_quote",), seed: int = 0, quiet: bool = True) -> dict[str, Any]:
    """Record a store of ``run`` into a temporary folder and time it: write throughput (MB/s of tokens
    and activations per second inside HDF5 writes), whole-recording throughput, open time, and the
    p50/p95 latency of a mix of queries on random nodes."""
    from engine.store.record import record_store
    from engine.runs import load_run
    from engine.store.activations import ActivationStore

    loaded = load_run(run)
    with tempfile.TemporaryDirectory(prefix="ci-bench-store-") as tmp:
        out = Path(tmp) / "activations.h5"
        path, ev, seconds = _run_recording(record_store(loaded, out, n_tokens=n_tokens, tasks=tasks, seed=seed),
                                           quiet=quiet)
        size = path.stat().st_size
        t0 = time.perf_counter()
        st = ActivationStore.open(path, expected_model_hash=loaded.model_hash)
        open_ms = (time.perf_counter() - t0) * 1000
        try:
            times = _query_mix(st, n_queries, seed)
            n_nodes = sum(st.site_width(s) for s in st.sites)
        finally:
            st.close()
    if ev is None or not ev.write_seconds:
        raise UserError("the benchmark recording produced no progress events")
    every = [t for ts in times.values() for t in ts]
    overall = _percentiles(every)
    return {"benchmark": "store", "run": str(loaded.path), "tokens": st.n_tokens, "nodes": n_nodes,
            "store_mb": round(size / 1e6, 2), "record_seconds": round(seconds, 2),
            "write_mb_per_s": round(ev.write_bytes / ev.write_seconds / 1e6, 1),
            "record_mb_per_s": round(size / seconds / 1e6, 1), "open_ms": round(open_ms, 2),
            "query_ms_p50": overall["p50"], "query_ms_p95": overall["p95"], "query_ms_max": overall["max"],
            "queries": {k: _percentiles(v) for k, v in times.items() if v}}
