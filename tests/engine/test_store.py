"""The HDF5 activation store: recording, the per-node index tables, the reader, SWMR and bad files.

All on a tiny random-weight run (no training) over about 2k pretraining tokens.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import engine.store.record as record
from engine.checkpoint import save_model
from engine.config import preset, run_config_from_dict
from engine.errors import UserError
from engine.fileio import atomic_write_json
from engine.model import GPT
from engine.store.record import bin_counts, record_store
from engine.runs import load_run
from engine.train.loop import run_to_end
from engine.sites import NodeId, all_sites, intervene, site_width
from engine.store.activations import QUANTILE_LEVELS, ActivationStore, default_store_path, partial_path
from engine.tasks.lookup import encode_task, get_task
from engine.data.tokenizer import CharTokenizer, save_tokenizer

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "store_v1.h5"
TASK = "single_double_quote"
N_TOKENS = 2000
TOP_K = 8


def _make_run(root: Path, corpus: Path) -> Path:
    """A run folder with random weights (no training) on the tiny preset."""
    cfg = run_config_from_dict({"data": {"folders": [str(corpus)]}}, base=preset("tiny"))
    tok = CharTokenizer()
    cfg = replace(cfg, model=replace(cfg.model, vocab_size=tok.vocab_size)).validate()
    root.mkdir(parents=True)
    save_tokenizer(tok, root / "tokenizer.json")
    atomic_write_json(root / "config.json", cfg.to_dict())
    torch.manual_seed(0)
    save_model(root, GPT(cfg.model))
    return root


def _drive(gen):
    events = []
    return run_to_end(gen, events.append), events


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, corpus_factory):
    root = tmp_path_factory.mktemp("store")
    return load_run(_make_run(root / "run", corpus_factory(root / "corpus")))


@pytest.fixture(scope="module")
def recorded(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "activations.h5"
    path, events = _drive(record_store(tiny_run, out, n_tokens=N_TOKENS, tasks=[TASK], n_pairs=16,
                                       batch_size=8, top_k=TOP_K))
    return path, events


def _forward_sites(model, tokens: np.ndarray, sites: list[str]) -> dict[str, np.ndarray]:
    """Each site's activation (B, T, width) for token rows (B, T), by a plain forward with hooks."""
    cap: dict[str, np.ndarray] = {}

    def keep(name):
        def hook(x):
            cap[name] = x.detach().float().numpy().copy()
            return x
        return hook

    with intervene({s: keep(s) for s in sites}), torch.no_grad():
        model(torch.from_numpy(np.array(tokens, dtype=np.int64)))
    return cap


def _column(path: Path, node: NodeId) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["sites"][node.site][:, :, node.index].astype(np.float32)  # (N, T)


def _nodes(run) -> list[NodeId]:
    rng = np.random.default_rng(0)
    out = []
    for s in all_sites(run.config.model):
        w = site_width(run.config.model, s)
        out += [NodeId(s, 0), NodeId(s, int(rng.integers(w))), NodeId(s, w - 1)]
    return out


# ------------------------------------------------------------------------------------------ round trip


def test_round_trip(tiny_run, recorded):
    path, events = recorded
    T = tiny_run.config.model.n_ctx
    kinds = [e.kind for e in events]
    assert kinds[-1] == "done" and "record" in kinds and "finalize" in kinds
    done = [e.done_tokens for e in events]
    assert done == sorted(done) and events[-1].done_tokens == events[-1].total_tokens
    assert not partial_path(path).exists()
    with ActivationStore.open(path, expected_model_hash=tiny_run.model_hash) as st:
        assert st.complete and st.schema_version == 1
        assert st.sites == all_sites(tiny_run.config.model)
        assert st.seq_len == T and st.n_examples == -(-N_TOKENS // T) and st.tasks == [TASK]
        # stored activations are the model's, in float16
        cap = _forward_sites(tiny_run.model, st.tokens[:4], st.sites)
        with h5py.File(path, "r") as f:
            for s in st.sites:
                np.testing.assert_allclose(f["sites"][s][:4].astype(np.float32), cap[s], atol=2e-3, rtol=2e-3)
                all_rows = f["sites"][s][:].astype(np.float64)
                np.testing.assert_allclose(st.means(s), all_rows.mean(axis=(0, 1)), atol=1e-3)
        # examples: decoded windows and per-token values
        node = NodeId("blocks.1.mlp.neuron", 5)
        col = _column(path, node)
        for ex in st.top_examples(node, k=5, window=3) + st.top_examples(str(node), k=5, window=3, bottom=True):
            lo, hi = max(0, ex.position - 3), min(T, ex.position + 4)
            assert ex.start == lo and ex.center == ex.position - lo and len(ex.tokens) == hi - lo
            assert list(ex.tokens) == [tiny_run.tokenizer.token_str(int(i)) for i in st.tokens[ex.example, lo:hi]]
            np.testing.assert_array_equal(ex.values, col[ex.example, lo:hi])
            assert ex.value == ex.values[ex.center] == col[ex.example, ex.position]
        # task activations at the last prompt token of A and B
        enc = encode_task(tiny_run.tokenizer, get_task(TASK).pairs("val", 16, 0), T, TASK)
        site = "blocks.0.attn.v"
        acts = _forward_sites(tiny_run.model, enc.tokens, [site])[site]
        last = acts[np.arange(enc.n), enc.lengths - 1]
        a, b = st.task_activations(NodeId(site, 7), TASK)
        assert a.shape == b.shape == (16,)
        np.testing.assert_allclose(a, last[0::2, 7], atol=1e-5)
        np.testing.assert_allclose(b, last[1::2, 7], atol=1e-5)
        assert len(st.task_prompts(TASK)) == 16


def test_the_resample_pool_reads_distinct_recorded_positions(recorded):
    """sample_activations: n distinct positions, each site's row the stored vector at that position
    (read one by one, never whole windows); every position of a store smaller than n."""
    path, _ = recorded
    with ActivationStore.open(path) as st, h5py.File(path, "r") as f:
        total = st.n_examples * st.seq_len
        pool = st.sample_activations(16, seed=3)
        stored = {s: f["sites"][s][:].reshape(total, -1).astype(np.float32) for s in st.sites}
        every = st.sample_activations(total + 10)
    for site, got in pool.items():
        assert got.shape == (16, stored[site].shape[1]) and got.dtype == torch.float32
        hits = [np.flatnonzero((stored[site] == row).all(1)) for row in got.numpy()]
        assert all(len(h) for h in hits), site  # every row is a recorded position's vector
    for site, got in every.items():
        np.testing.assert_array_equal(got.numpy(), stored[site])  # all, in recorded order


def test_topk_index_equals_bruteforce(tiny_run, recorded):
    path, _ = recorded
    with ActivationStore.open(path) as st, h5py.File(path, "r") as f:
        for node in _nodes(tiny_run):
            col = f["sites"][node.site][:, :, node.index].astype(np.float32).ravel()
            order = np.argsort(col, kind="stable")
            tables = {False: f["topk"][node.site]["max"][node.index], True: f["topk"][node.site]["min"][node.index]}
            for bottom, table in tables.items():
                want = col[order[:TOP_K]] if bottom else col[order[::-1][:TOP_K]]
                np.testing.assert_array_equal(table["value"], want)
                # every indexed (example, position) holds the indexed value, and they are distinct
                flat = table["example"] * st.seq_len + table["position"]
                np.testing.assert_array_equal(col[flat], table["value"])
                assert len(set(flat.tolist())) == TOP_K
                got = [e.value for e in st.top_examples(node, k=TOP_K, window=0, bottom=bottom)]
                np.testing.assert_array_equal(got, want)
            assert st.value_range(node) == (col.min(), col.max())


def test_histograms_count_every_activation(tiny_run, recorded):
    path, _ = recorded
    with ActivationStore.open(path) as st:
        n = st.n_tokens
        for node in _nodes(tiny_run):
            counts, edges = st.histogram(node)
            col = _column(path, node).ravel()
            assert counts.sum() == n and counts.shape == (64,) and edges.shape == (65,)
            assert edges[0] == col.min() and edges[-1] == col.max() or col.min() == col.max()
            # naive reference of the documented binning rule
            lo, hi = np.float32(col.min()), np.float32(col.max())
            span, lo_e = (hi - lo, lo) if hi > lo else (np.float32(1), lo - np.float32(0.5))
            ref = np.bincount(np.clip(np.floor((col - lo_e) * (np.float32(64) / span)), 0, 63).astype(int),
                              minlength=64)
            np.testing.assert_array_equal(counts, ref)
    x = np.random.default_rng(0).normal(size=(500, 3)).astype(np.float16)
    x[:, 2] = 1.5  # a constant node
    c = bin_counts(x, x.min(0).astype(np.float32), x.max(0).astype(np.float32))
    assert (c.sum(1) == 500).all() and c[2, 32] == 500


def test_quantile_samples(tiny_run, recorded):
    path, _ = recorded
    with ActivationStore.open(path) as st:
        node = NodeId("blocks.0.mlp.neuron", 3)
        col = _column(path, node)
        means = []
        for q in QUANTILE_LEVELS:
            exs = st.quantile_examples(node, q, window=2)
            assert exs and all(ex.value == col[ex.example, ex.position] for ex in exs)
            vals = [ex.value for ex in exs]
            assert vals == sorted(vals, reverse=True)
            means.append(np.mean(vals))
        assert means == sorted(means)
        # the sampled values sit near the true quantiles (the sample has 2048 positions here)
        assert abs(means[3] - np.quantile(col, 0.5)) <= 0.1 * (col.max() - col.min())
        with pytest.raises(UserError, match="quantile"):
            st.quantile_examples(node, 0.25)


# ------------------------------------------------------------------------------------------ SWMR, cancel

READER = r"""
import json, sys
from engine.errors import UserError
from engine.store.activations import ActivationStore
path, node = sys.argv[1], sys.argv[2]
out = {}
try:
    ActivationStore.open(path)
except UserError as exc:
    out["default_open"] = str(exc)
with ActivationStore.open(path, allow_incomplete=True) as st:
    out["complete"] = st.complete
    out["rows"] = st.n_examples
    out["tokens_rows"] = int(st.tokens.shape[0])
    exs = st.top_examples(node, k=3, window=2)
    out["examples"] = [[e.example, e.position, e.value, float(e.values[e.center])] for e in exs]
    out["task_a"] = st.task_activations(node, sys.argv[3])[0].tolist()
    out["means"] = st.means(node.split(":")[0]).tolist()
    try:
        st.histogram(node)
    except UserError as exc:
        out["histogram"] = str(exc)
print(json.dumps(out))
"""


def _read_in_subprocess(path: Path, node: str) -> dict:
    res = subprocess.run([sys.executable, "-c", READER, str(path), node, TASK], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_reader_in_second_process_while_recording(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(record, "EVENT_INTERVAL_S", 0.0)
    monkeypatch.setattr(record, "TABLE_INTERVAL_S", 0.0)
    out = tmp_path / "live.h5"
    gen = record_store(tiny_run, out, n_tokens=N_TOKENS, tasks=[TASK], n_pairs=8, batch_size=4, top_k=4)
    seen = []
    node = "blocks.1.attn.q:3"
    try:
        for ev in gen:
            if ev.kind == "record" and ev.done_tokens < ev.total_tokens and len(seen) < 2 \
                    and ev.done_tokens >= (len(seen) + 1) * ev.total_tokens // 3:
                r = _read_in_subprocess(partial_path(out), node)
                assert not r["complete"] and "incomplete" in r["default_open"]
                assert r["rows"] == r["tokens_rows"] == ev.done_tokens // tiny_run.config.model.n_ctx
                assert len(r["examples"]) == 3 and len(r["task_a"]) == 8 and "histogram" in r["histogram"]
                for ex, pos, value, center in r["examples"]:
                    assert 0 <= ex < r["rows"] and value == center
                assert not out.exists()
                # a reader in the recording process itself (the app's recorder runs in a worker thread)
                with ActivationStore.open(partial_path(out), allow_incomplete=True) as st:
                    assert not st.complete and st.n_examples == r["rows"]
                    assert [e.value for e in st.top_examples(node, k=3)] == [e[2] for e in r["examples"]]
                seen.append(r)
    finally:
        gen.close()
    assert len(seen) == 2 and seen[1]["rows"] > seen[0]["rows"]
    with ActivationStore.open(out, expected_model_hash=tiny_run.model_hash) as st:
        assert st.complete and st.n_examples * st.seq_len >= N_TOKENS


def test_cancel_and_crash_leave_nothing_that_loads_as_complete(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(record, "EVENT_INTERVAL_S", 0.0)
    out = tmp_path / "cancelled.h5"
    gen = record_store(tiny_run, out, n_tokens=N_TOKENS, batch_size=4)
    for ev in gen:
        if ev.kind == "record":
            break
    crashed = tmp_path / "crashed.h5"
    shutil.copy(partial_path(out), crashed)  # what a killed recorder leaves behind
    gen.close()
    assert not out.exists() and not partial_path(out).exists()
    with pytest.raises(UserError, match="incomplete"):
        ActivationStore.open(crashed)
    with ActivationStore.open(crashed, allow_incomplete=True) as st:
        assert not st.complete and st.n_examples >= 4
    with pytest.raises(UserError, match="not found"):
        ActivationStore.open(out)


# ------------------------------------------------------------------------------------------ bad input


def test_bad_files_are_refused(recorded, tmp_path):
    path, _ = recorded
    data = path.read_bytes()
    cut = tmp_path / "truncated.h5"
    for size in (len(data) // 2, 100_000):
        cut.write_bytes(data[:size])
        with pytest.raises(UserError, match="truncated"):
            ActivationStore.open(cut)
    text = tmp_path / "notes.h5"
    text.write_text("not an HDF5 file\n")
    with pytest.raises(UserError, match="not a readable HDF5"):
        ActivationStore.open(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(UserError, match="not a Circuit Inspector activation store"):
        ActivationStore.open(other)
    newer = tmp_path / "newer.h5"
    shutil.copy(path, newer)
    with h5py.File(newer, "r+") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(UserError, match="schema version 99"):
        ActivationStore.open(newer)
    with pytest.raises(UserError, match="not found"):
        ActivationStore.open(tmp_path / "missing.h5")


def test_hash_mismatch_unknown_nodes_and_bad_args(tiny_run, recorded, tmp_path):
    path, _ = recorded
    with pytest.raises(UserError, match="another model"):
        ActivationStore.open(path, expected_model_hash="0" * 32)
    with ActivationStore.open(path) as st:
        for bad in ("blocks.7.attn.q:0", "blocks.0.attn.q:999", "nonsense", "blocks.0.attn.zz:1"):
            with pytest.raises(UserError):
                st.top_examples(bad)
        with pytest.raises(UserError, match="unknown site"):
            st.means("blocks.5.mlp.neuron")
        with pytest.raises(UserError, match="not recorded"):
            st.task_activations("blocks.0.attn.q:0", "for_while")
        with pytest.raises(UserError, match="k must be"):
            st.top_examples("blocks.0.attn.q:0", k=0)
        assert len(st.top_examples("blocks.0.attn.q:0", k=TOP_K + 5)) == TOP_K
        with pytest.raises(UserError, match="window"):
            st.top_examples("blocks.0.attn.q:0", window=-1)
    with pytest.raises(UserError, match="closed"):
        st.top_examples("blocks.0.attn.q:0")
    for kw in ({"n_tokens": 0}, {"top_k": 0}, {"tasks": ["no_such_task"]}):
        with pytest.raises(UserError):
            _drive(record_store(tiny_run, tmp_path / "bad.h5", **kw))
        assert not (tmp_path / "bad.h5").exists() and not partial_path(tmp_path / "bad.h5").exists()


def test_v1_fixture_still_loads():
    with ActivationStore.open(FIXTURE) as st, h5py.File(FIXTURE, "r") as f:
        assert st.schema_version == 1 and st.complete
        assert (st.n_examples, st.seq_len, st.top_k, st.tasks) == (8, 16, 5, [TASK])
        assert len(st.sites) == 8
        node = NodeId("blocks.0.mlp.neuron", 2)
        col = f["sites"][node.site][:, :, node.index].astype(np.float32).ravel()
        assert [e.value for e in st.top_examples(node, k=5, window=4)] == sorted(col, reverse=True)[:5]
        counts, edges = st.histogram(node)
        assert counts.sum() == col.size and edges[-1] == col.max()
        assert len(st.quantile_examples(node, 0.5)) == 4
        a, b = st.task_activations(node, TASK)
        assert a.shape == b.shape == (8,)
        assert st.means(node.site).shape == (16,)


@pytest.mark.skipif(shutil.which("h5dump") is None, reason="h5dump (Debian package hdf5-tools) not installed")
def test_h5dump_lists_groups_and_attributes(recorded):
    path, _ = recorded
    res = subprocess.run(["h5dump", "-H", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    for name in ('ATTRIBUTE "schema_version"', 'ATTRIBUTE "complete"', 'ATTRIBUTE "model_hash"',
                 'GROUP "sites"', 'GROUP "topk"', 'GROUP "hist"', 'GROUP "quantiles"', 'GROUP "means"',
                 'GROUP "tasks"', 'DATASET "tokens"', 'DATASET "blocks.0.mlp.neuron"'):
        assert name in res.stdout, name


# ------------------------------------------------------------------------------------------ CLI, bench


def test_record_command_and_bench(tiny_run, tmp_path):
    from engine.cli.store import bench_store, cmd_node, cmd_record, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "cli.h5"
    args = parser.parse_args(["record", str(tiny_run.path), "--tokens", "300", "--tasks", "--out", str(out)])
    res = cmd_record(args)
    assert res["complete"] and res["tokens"] == 320 and res["tasks"] == [] and Path(res["store"]) == out
    assert default_store_path(tiny_run.path) == (tiny_run.path / "activations.h5").resolve()
    args = parser.parse_args(["record", str(tmp_path / "nope"), "--tasks"])
    with pytest.raises(UserError, match="run folder not found"):
        cmd_record(args)
    node_args = parser.parse_args(["node", str(tiny_run.path), "blocks.0.mlp.neuron:3", "--store", str(out), "-k", "2"])
    r = cmd_node(node_args)
    assert len(r["top"]) == len(r["bottom"]) == 2 and sum(r["histogram"]["counts"]) == 320
    with h5py.File(out, "r+") as f:
        f.attrs["model_hash"] = "f" * 32
    with pytest.raises(UserError, match="another model"):
        cmd_node(node_args)
    b = bench_store(tiny_run.path, n_tokens=300, n_queries=60, tasks=[TASK])
    assert b["write_mb_per_s"] > 0 and 0 < b["query_ms_p50"] <= b["query_ms_p95"]
    assert set(b["queries"]) >= {"top_examples", "histogram", "task_activations", "means"}


def test_cli_error_lines(tiny_run, recorded, tmp_path, capsys, monkeypatch):
    from engine.cli import main as cli
    from engine.cli import store as store_cli

    if "record" not in cli.build_parser().format_help():  # until engine.cli.main registers the commands
        build = cli.build_parser

        def wired():
            p = build()
            store_cli.register(next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)))
            return p
        monkeypatch.setattr(cli, "build_parser", wired)
    path, _ = recorded
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[:50_000])
    for argv, msg in ((["record", str(tmp_path / "nope")], "run folder not found"),
                      (["node", str(tiny_run.path), "blocks.0.attn.q:0", "--store", str(cut)], "truncated"),
                      (["node", str(tiny_run.path), "blocks.0.attn.q:999", "--store", str(path)], "out of range"),
                      (["node", str(tiny_run.path), "blocks.0.attn.q:1", "--store", str(FIXTURE)], "another model")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err and "Traceback" not in err
    assert cli.main(["node", str(tiny_run.path), "blocks.0.attn.q:1", "--store", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["node"] == "blocks.0.attn.q:1"


def test_store_bytes_is_what_the_recorder_writes(recorded):
    """engine.sites.store_bytes (the recorder's free-space check and the app's record button) equals
    the recorded activations and tokens of a real store, byte for byte."""
    from engine.sites import store_bytes

    path, _ = recorded
    with ActivationStore.open(path) as st, h5py.File(path, "r") as f:
        total = st.n_examples * st.seq_len
        n_nodes = sum(f["sites"][s].shape[2] for s in st.sites)
        written = sum(f["sites"][s].size * f["sites"][s].dtype.itemsize for s in st.sites)
        written += f["tokens"].size * f["tokens"].dtype.itemsize
    assert written == store_bytes(total, n_nodes)
