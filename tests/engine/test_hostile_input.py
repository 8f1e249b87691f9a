"""Hostile input (issue 19): every reader and command meets damaged, hostile and absurd input and
answers with exit 2 and exactly one ``error:`` line (or, where the input is valid but odd, a warning
and a correct result), with no traceback, no input file changed and nothing written outside the run
or the chosen output. Table-driven over a tiny trained run, fixed seed, fast.

Cases by reader: JSON documents (config.json, run.json, tokenizer.json, circuit files, task files,
sessions, ``--config``, ``record --tasks``) x (invalid UTF-8, random bytes, nesting 100000 deep, a
number of 5000 digits, a folder in the file's place, a file over the size limit); train_log.jsonl
(non-object lines, bad bytes, a string val_loss, a folder); run.json values; names that become paths
(task names, ``prune --name``); sizes (pairs, steps, tokens, model and batch sizes, non-finite
floats, template expansions); output paths (``record --out``, ``compare --csv``); abbreviated
options; HDF5 stores (damaged tables, bad token ids, truncated or random files); the ablation-means
cache (damaged, foreign, wrong sites, shapes, dtypes, NaN). Resume safety is in test_resume_safety.py.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from engine.cli.main import main

SEED = 19
TASK = "single_double_quote"
NODE = "blocks.0.mlp.neuron:1"


@pytest.fixture(scope="module")
def base(tmp_path_factory, corpus_factory, tiny_config) -> Path:
    """A tiny trained run (two checkpoints), its means cache and a small activation store."""
    from engine.ablation.means import load_or_compute_means
    from engine.runs import load_run
    from engine.store.record import record_store
    from engine.train.loop import run_to_end, train

    root = tmp_path_factory.mktemp("hostile")
    corpus = corpus_factory(root / "corpus")
    run_to_end(train(root / "run", tiny_config(corpus, steps=4, checkpoint_interval=2, eval_interval=2,
                                                 eval_batches=1)))
    run = load_run(root / "run")
    load_or_compute_means(run)
    run_to_end(record_store(run, root / "store.h5", n_tokens=128, tasks=[TASK], n_pairs=8, batch_size=4, top_k=4))
    return root


@pytest.fixture
def box(base, tmp_path, monkeypatch) -> Path:
    """A copy of the run in ``tmp_path/run`` (the corpus stays where the run's config says), with the
    per-user data folder inside ``tmp_path`` so that any write at all shows in a snapshot."""
    shutil.copytree(base / "run", tmp_path / "run")
    shutil.copy(base / "store.h5", tmp_path / "store.h5")
    monkeypatch.setenv("CIRCUIT_INSPECTOR_DATA", str(tmp_path / "data"))
    return tmp_path


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (hidden ones too) with a hash of its content."""
    out = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = "dir" if p.is_dir() else hashlib.blake2b(p.read_bytes()).hexdigest()
    return out


def expect_error(capsys, argv: list[str], match: str, box: Path | None = None) -> str:
    """Run the CLI: exit 2, exactly one line starting with ``error:`` (containing ``match``), no
    traceback; with ``box``, nothing under it changed."""
    before = snapshot(box) if box is not None else None
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert err.rstrip("\n").splitlines()[-1] == lines[0], f"the error is not one line: {err}"
    assert match.lower() in lines[0].lower(), lines[0]
    if box is not None:
        assert snapshot(box) == before, "an error changed or wrote files"
    return lines[0]


def expect_ok(capsys, argv: list[str]) -> tuple[str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    return out, err


# ---------------------------------------------------------------------------------------------
# JSON documents: every reader x every kind of damage


def _deep(_p: Path) -> bytes:
    return b"[" * 100_000


DAMAGES = {
    "invalid utf-8": (lambda p: b'{"name": "\xff\xfe\xfd"}', "not utf-8"),
    "random bytes": (lambda p: random.Random(SEED).randbytes(300), ""),
    "nested 100000 deep": (_deep, "nests"),
    "5000-digit number": (lambda p: b'{"x": 1' + b"0" * 5000 + b"}", "not valid json"),
    "truncated": (lambda p: p.read_bytes()[: len(p.read_bytes()) // 2] if p.exists() else b'{"a": ', "not valid json"),
    "a folder": (None, "is a folder"),
    "over the size limit": (lambda p: b"[" + b" " * 5000 + b"]", "more than"),
}

# (name, file: in the run or a new input file, argv builder); RUN, FILE, OUT are replaced
READERS = {
    "config.json": ("run/config.json", ["info", "RUN"]),
    "run.json": ("run/run.json", ["info", "RUN"]),
    "tokenizer.json": ("run/tokenizer.json", ["info", "RUN"]),
    "circuit file": ("in/circuit.json", ["faithfulness", "RUN", "FILE"]),
    "task file": ("in/task.json", ["eval-tasks", "RUN", "--task-file", "FILE", "--pairs", "8"]),
    "session": ("in/session.json", ["export", "RUN", "--session", "FILE", "--format", "json", "--out", "OUT/v.json"]),
    "--config": ("in/config.json", ["train", "--config", "FILE", "--out", "OUT/new_run"]),
    "record --tasks": ("in/task.json", ["record", "RUN", "--tasks", "FILE", "--out", "OUT/s.h5", "--tokens", "64"]),
}


def _argv(template: list[str], box: Path, file: Path) -> list[str]:
    subst = {"RUN": box / "run", "FILE": file, "OUT": box / "out"}
    return [str(subst.get(a, a)) if not a.startswith("OUT/") else str(box / "out" / a[4:]) for a in template]


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("reader", sorted(READERS))
def test_damaged_json_is_one_error_naming_the_file(box, capsys, monkeypatch, reader, damage):
    rel, template = READERS[reader]
    file = box / rel
    file.parent.mkdir(exist_ok=True)
    (box / "out").mkdir()
    make, match = DAMAGES[damage]
    if make is None:
        file.unlink(missing_ok=True)
        file.mkdir()
    else:
        file.write_bytes(make(file))
    if damage == "over the size limit":
        monkeypatch.setattr("engine.fileio.MAX_JSON_BYTES", 4096)  # the run's own files are smaller
    line = expect_error(capsys, _argv(template, box, file), match, box)
    assert file.name in line


# ---------------------------------------------------------------------------------------------
# The training log and run.json: odd lines are skipped, odd values never crash `info`


def test_odd_log_lines_and_status_values_are_skipped(box, capsys):
    log = box / "run" / "train_log.jsonl"
    log.write_bytes(log.read_bytes() + b'[1, 2]\n3\n"text"\n\xff\xfe\n' + b"[" * 5000 + b"\n"
                    + b'{"kind": "eval", "step": 4, "val_loss": "oops"}\n{"kind": "eval", "step": "x"}\n')
    status = json.loads((box / "run" / "run.json").read_text())
    (box / "run" / "run.json").write_text(json.dumps({**status, "val_loss": "oops", "steps_done": "many"}))
    before = snapshot(box)
    out, _ = expect_ok(capsys, ["info", box / "run"])
    assert "val loss" in out
    out, _ = expect_ok(capsys, ["info", box / "run", "--json"])
    info = json.loads(out.strip().splitlines()[-1])
    assert info["val_loss"] is None or isinstance(info["val_loss"], float)
    assert info["steps_done"] is None
    assert snapshot(box) == before


def test_a_folder_in_place_of_the_log_is_an_error(box, capsys):
    log = box / "run" / "train_log.jsonl"
    log.unlink()
    log.mkdir()
    expect_error(capsys, ["info", box / "run"], "is a folder", box)


def test_a_damaged_checkpoint_json_is_left_out_of_the_list(box, capsys):
    (box / "run" / "checkpoints" / "step_0000004.json").write_bytes(b'{"step": 1180591620717411303424}')
    out, _ = expect_ok(capsys, ["info", box / "run", "--json"])
    assert json.loads(out.strip().splitlines()[-1])["checkpoints"] == [2]


# ---------------------------------------------------------------------------------------------
# Names that become paths


def _task_file(path: Path, name: str, **extra) -> Path:
    pairs = [{"prompt_a": f"x{i} = \"a", "target_a": "\"", "prompt_b": f"x{i} = 'a", "target_b": "'"}
             for i in range(8)]
    path.write_text(json.dumps({"name": name, "pairs": pairs, **extra}))
    return path


BAD_NAMES = ["../../../../escaped", "a/b", "back\\slash", "nul\x00byte", "x" * 101, ".hidden", "..", "   "]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_task_names_cannot_leave_the_run(box, capsys, name):
    task = _task_file(box / "task.json", name)
    expect_error(capsys, ["prune", box / "run", "--task-file", task, "--steps", "1"], "", box)
    assert not (box.parent / "escaped").exists()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_circuit_names_cannot_leave_the_run(box, capsys, name):
    expect_error(capsys, ["prune", box / "run", "--task", TASK, "--steps", "1", "--name", name], "name", box)


def test_a_template_expanding_past_2_to_the_64_is_an_error(box, capsys):
    slots = {f"s{i}": ["a", "b"] for i in range(64)}
    template = {"prompt_a": "".join(f"{{s{i}}}" for i in range(64)) + " = \"", "target_a": "\"",
                "prompt_b": "x = '", "target_b": "'"}
    path = box / "t.json"
    path.write_text(json.dumps({"name": "huge", "templates": [template], "slots": slots}))
    expect_error(capsys, ["eval-tasks", box / "run", "--task-file", path, "--pairs", "8"], "expand", box)


# ---------------------------------------------------------------------------------------------
# Sizes, checked before any work


@pytest.mark.parametrize("args,match", [
    (["eval-tasks", "RUN", "--tasks", TASK, "--pairs", "10000000"], "at most"),
    (["ablate", "RUN", "--task", TASK, "--nodes", NODE, "--pairs", "10000000"], "at most"),
    (["record", "RUN", "--tokens", str(10 ** 20), "--out", "OUT/s.h5"], "gib"),
    (["train", "--steps", str(10 ** 20), "--out", "OUT/r"], "train.steps"),
    (["train", "--set", "train.steps=1e20", "--out", "OUT/r"], "train.steps"),
    (["train", "--set", "model.d_model=1048576", "--out", "OUT/r"], "gib"),
    (["train", "--set", "model.n_ctx=1000000000", "--out", "OUT/r"], "gib"),
    (["train", "--set", "train.batch_size=100000000", "--out", "OUT/r"], "gib"),
    (["train", "--set", "train.eps=Infinity", "--out", "OUT/r"], "finite"),
    (["train", "--set", "train.lr=NaN", "--out", "OUT/r"], "finite"),
    (["train", "--set", "train.lr=1e999", "--out", "OUT/r"], "finite"),
    (["train", "--set", "model.afrac_sites=" + "[" * 5000, "--out", "OUT/r"], "deep"),
    (["prune", "RUN", "--task", TASK, "--target-loss", "inf"], "finite"),
    (["prune", "RUN", "--task", TASK, "--k-coefs", "nan"], "finite"),
    (["train", "--set", "model.n_layer=1180591620717411303424", "--out", "OUT/r"], "n_layer"),
    (["train", "--set", "model.d_head=1", "--set", "model.d_model=1073741824", "--out", "OUT/r"], "heads"),
    (["record", "RUN", "--token", "64", "--out", "OUT/s.h5"], "unrecognized"),  # no abbreviated options
])
def test_absurd_sizes_are_refused_up_front(box, capsys, args, match):
    (box / "out").mkdir()
    corpus = json.loads((box / "run" / "config.json").read_text())["data"]["folders"]
    argv = _argv(args, box, box)
    if argv[0] == "train":
        argv += ["--corpus", *corpus]
    expect_error(capsys, argv, match, box)


# ---------------------------------------------------------------------------------------------
# Output paths, checked before any work


@pytest.mark.parametrize("args,match", [
    (["record", "RUN", "--tokens", "64", "--out", "OUT"], "is a folder"),
    (["record", "RUN", "--tokens", "64", "--out", "OUT/no/such/s.h5"], "does not exist"),
    (["compare", "RUN", "RUN", "--csv", "OUT"], "is a folder"),
    (["compare", "RUN", "RUN", "--csv", "OUT/no/such/c.csv"], "does not exist"),
])
def test_output_paths_are_checked_before_any_work(box, capsys, args, match):
    (box / "out").mkdir()
    argv = [str(box / "out") if a == "OUT" else a for a in args]
    expect_error(capsys, _argv(argv, box, box), match, box)
    assert not (box / "out" / "no").exists()


# ---------------------------------------------------------------------------------------------
# HDF5 stores


def _replace(f: h5py.File, name: str, data) -> None:
    del f[name]
    f[name] = data


SITE = "blocks.0.mlp.neuron"
STORE_DAMAGES = {
    "status of shape (1,)": lambda f: _replace(f, "status", np.array([1])),
    "top-k of the wrong shape": lambda f: _replace(f, f"topk/{SITE}/max", f[f"topk/{SITE}/max"][:1]),
    "top-k of the wrong dtype": lambda f: _replace(f, f"topk/{SITE}/max", np.zeros((3, 3), np.float32)),
    "histogram of the wrong shape": lambda f: _replace(f, f"hist/{SITE}/counts", np.zeros((2,), np.int64)),
    "means of the wrong shape": lambda f: _replace(f, f"means/{SITE}", np.zeros((2, 2), np.float32)),
    "token ids outside the vocabulary": lambda f: f["tokens"].__setitem__((0, 0), 10 ** 6),
    "float tokens": lambda f: _replace(f, "tokens", f["tokens"][:].astype(np.float32) + 0.5),
    "task activations of the wrong shape": lambda f: _replace(f, f"tasks/{TASK}/sites/{SITE}", np.zeros((3,), np.float32)),
    "a site table missing": lambda f: f.__delitem__(f"quantiles/{SITE}"),
}


@pytest.mark.parametrize("damage", sorted(STORE_DAMAGES) + ["random bytes", "truncated", "a folder"])
def test_a_damaged_store_is_one_error_and_never_breaks_ablation(box, capsys, damage):
    store = box / "store.h5"
    if damage == "random bytes":
        store.write_bytes(random.Random(SEED).randbytes(4096))
    elif damage == "truncated":
        store.write_bytes(store.read_bytes()[:3000])
    elif damage == "a folder":
        store.unlink()
        store.mkdir()
    else:
        with h5py.File(store, "r+") as f:
            STORE_DAMAGES[damage](f)
    expect_error(capsys, ["node", box / "run", NODE, "--store", store], "store", box)
    shutil.move(store, box / "run" / "activations.h5")  # the run's own store: resample values come from it
    before = snapshot(box)
    expect_ok(capsys, ["ablate", box / "run", "--task", TASK, "--nodes", NODE, "--mode", "mean", "--pairs", "8"])
    assert snapshot(box) == before


# ---------------------------------------------------------------------------------------------
# The ablation-means cache: never used when damaged, never a crash


def _means(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _meta(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        return fh.metadata()


def _rewrite(path: Path, change) -> None:
    tensors, meta = _means(path), _meta(path)
    change(tensors)
    save_file(tensors, str(path), metadata=meta)


MEANS_DAMAGES = {
    "garbage": lambda p: p.write_bytes(random.Random(SEED).randbytes(500)),
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:200]),
    "a folder": lambda p: (p.unlink(), p.mkdir()),
    "a pickle": lambda p: torch.save({"x": torch.zeros(2)}, p),
    "another model": lambda p: save_file(_means(p), str(p), metadata={"model_hash": "0" * 32}),
    "a missing site": lambda p: _rewrite(p, lambda t: t.pop(SITE)),
    "a wrong shape": lambda p: _rewrite(p, lambda t: t.__setitem__(SITE, torch.zeros(3))),
    "NaN": lambda p: _rewrite(p, lambda t: t[SITE].__setitem__(0, float("nan"))),
    "integers": lambda p: _rewrite(p, lambda t: t.__setitem__(SITE, t[SITE].long())),
    "2-D values": lambda p: _rewrite(p, lambda t: t.__setitem__(SITE, t[SITE][None])),
}


@pytest.mark.parametrize("damage", sorted(MEANS_DAMAGES))
def test_damaged_means_are_not_used(box, damage):
    from engine.ablation.means import MEANS_FILE, read_cached_means
    from engine.runs import load_run

    run = load_run(box / "run")
    path = box / "run" / MEANS_FILE
    assert read_cached_means(path, run)[0] is not None
    MEANS_DAMAGES[damage](path)
    means, why = read_cached_means(path, run)
    assert means is None and why


def test_garbage_means_are_recomputed_with_a_warning(box, base, capsys, caplog):
    from engine.ablation.means import MEANS_FILE

    path = box / "run" / MEANS_FILE
    good = path.read_bytes()
    path.write_bytes(b"\x80\x04garbage")
    expect_ok(capsys, ["ablate", box / "run", "--task", TASK, "--nodes", NODE, "--pairs", "8"])
    assert "recomputing" in caplog.text
    assert _means(path).keys() == _means(base / "run" / MEANS_FILE).keys() and path.read_bytes() != b"\x80\x04garbage"
    assert len(path.read_bytes()) == len(good)


# ---------------------------------------------------------------------------------------------
# Labels and file modes


def test_a_damaged_labels_file_is_reported_and_kept(tmp_path):
    from engine.scene.bundle import LABELS_FILE, load_labels, save_labels

    path = tmp_path / LABELS_FILE
    path.write_bytes(b"\xff not json")
    notes: list[str] = []
    assert load_labels(tmp_path, None, notes) == {}
    assert len(notes) == 1 and LABELS_FILE in notes[0]
    assert path.read_bytes() == b"\xff not json"
    save_labels(tmp_path, {NODE: "quote"})
    assert json.loads(path.read_text()) == {NODE: "quote"}
    assert (tmp_path / (LABELS_FILE + ".damaged")).read_bytes() == b"\xff not json"
    assert sorted(p.name for p in tmp_path.iterdir()) == [LABELS_FILE, LABELS_FILE + ".damaged"]  # no temporaries


# ---------------------------------------------------------------------------------------------
# A seeded fuzz: valid documents with random parts replaced raise a UserError or load, nothing else

ODD_VALUES = [None, True, 0, -1, 1.5, 2 ** 70, -(2 ** 70), 1e308, float("nan"), float("inf"), "", "x", "../x",
              "a\x00b", [], [1], ["a"], {}, {"a": 1}, [[[]]], NODE, "blocks.9.attn.q:99999999999"]


def _mutate(doc, rng: random.Random):
    """``doc`` with one random part replaced by an odd value (or dropped)."""
    doc = json.loads(json.dumps(doc))
    paths: list[list] = []

    def walk(x, path):
        paths.append(path)
        items = x.items() if isinstance(x, dict) else enumerate(x[:4]) if isinstance(x, list) else ()
        for k, v in items:
            walk(v, path + [k])

    walk(doc, [])
    path = rng.choice(paths)
    if not path:
        return rng.choice(ODD_VALUES)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(ODD_VALUES)
    return doc


def _documents(run: Path) -> dict:
    from engine.circuits.circuit import load_circuit
    from engine.data.tokenizer import load_tokenizer
    from engine.runs import load_run
    from engine.scene.session import read_session
    from engine.tasks.files import load_task_file

    model = load_run(run).model
    pairs = [{"prompt_a": f"x{i} = \"a", "target_a": "\"", "prompt_b": f"x{i} = 'a", "target_b": "'"} for i in range(8)]
    return {
        "tokenizer": (json.loads((run / "tokenizer.json").read_text()), load_tokenizer),
        "run config": (json.loads((run / "config.json").read_text()), lambda p: load_run(p.parent)),
        "circuit": ({"kind": "circuit", "schema_version": 1, "task": TASK, "nodes": [NODE, "blocks.1.attn.q:2"],
                     "edges": [[NODE, "blocks.1.attn.q:2", 0.5]], "metrics": {"circuit_loss": 0.1}, "settings": {},
                     "labels": {NODE: "x"}, "sites": ["blocks.0.mlp.neuron", "blocks.1.attn.q"]},
                    lambda p: load_circuit(p, model, "")),
        "task pairs": ({"name": "t", "description": "d", "pairs": pairs}, load_task_file),
        "task templates": ({"name": "t", "templates": [{"prompt_a": "{v} = \"{w}", "target_a": "\"",
                                                        "prompt_b": "{v} = '{w}", "target_b": "'"}],
                            "slots": {"v": ["a", "b", "c"], "w": ["x", "y", "z"]}}, load_task_file),
        "session": ({"kind": "session", "schema_version": 2, "run": "r", "task": TASK, "ablated_nodes": [NODE],
                     "ablated_edges": [], "labels": {NODE: "x"}, "selected": NODE, "pair": 0, "threshold": 0.0,
                     "view_range": [0, 1, 0, 1], "view": "circuit", "mode": "mean", "baseline": "circuit"},
                    read_session),
    }


def test_fuzzed_documents_load_or_raise_a_user_error(box):
    from engine.errors import UserError

    rng = random.Random(SEED)
    run = box / "run"
    for name, (doc, read) in _documents(run).items():
        target = run / "config.json" if name == "run config" else box / "doc.json"
        for _ in range(40):
            bad = _mutate(doc, rng)
            target.write_text(json.dumps(_mutate(bad, rng) if rng.random() < 0.5 else bad))
            try:
                read(target)
            except UserError:
                pass
            except Exception as exc:  # noqa: BLE001 - the point of the test
                pytest.fail(f"{name}: {type(exc).__name__}: {exc} for {target.read_text()[:300]}")


def test_stale_temporaries_of_an_atomic_write_are_removed(tmp_path):
    """What a writer killed mid-write leaves (``.<name>.<random>.tmp``) goes with the next write of
    that file once it is surely stale; a fresh one (a writer still at work) stays."""
    import os
    import time

    from engine.fileio import STALE_TEMP_S, atomic_write_json

    stale, fresh = tmp_path / ".c.json.abc.tmp", tmp_path / ".c.json.def.tmp"
    other = tmp_path / ".d.json.ghi.tmp"
    for p in (stale, fresh, other):
        p.write_text("half")
    old = time.time() - 2 * STALE_TEMP_S
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    atomic_write_json(tmp_path / "c.json", {"a": 1})
    assert not stale.exists() and fresh.exists() and other.exists()


def test_a_killed_writers_temporary_goes_at_once_a_live_ones_stays(tmp_path):
    """Temporaries name their writer (pid and host): one whose process is gone is removed by the next
    write at once, whatever its age; a live writer's (this process, another host's) stays."""
    import os
    import subprocess
    import sys

    from engine.fileio import _WRITER, atomic_write_json

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(child.stdout)  # that process has exited
    host = _WRITER.partition("@")[2]
    dead = tmp_path / f".c.json.w{dead_pid}@{host}.abc.tmp"
    alive = tmp_path / f".c.json.w{os.getpid()}@{host}.def.tmp"
    elsewhere = tmp_path / f".c.json.w{dead_pid}@another-host.ghi.tmp"
    for p in (dead, alive, elsewhere):
        p.write_text("half")
    atomic_write_json(tmp_path / "c.json", {"a": 1})
    assert not dead.exists() and alive.exists() and elsewhere.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["c.json", alive.name, elsewhere.name])
