"""Inputs that used to be accepted silently (issue 19, item 12): byte flips in a run's weights (the
checksum ``model.checksum.json`` records when the file is written, checked on load, and never
condemning a valid file after a crash between the two writes), circuit files whose edges name unknown
nodes or whose metrics hold strings where numbers belong, non-finite floats in run and prune configs
(an infinite target loss would pass any circuit and overwrite the saved one). Side findings: weights
written with the same permissions as JSON, labels.json written atomically."""

from __future__ import annotations

import json
import math
import shutil
import stat
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from engine.checkpoint import CHECKSUM_FILE, MODEL_FILE, file_hash, list_checkpoints
from engine.cli.main import main
from engine.errors import UserError
from engine.fileio import file_mode
from engine.runs import load_run


@pytest.fixture
def run(trained_tiny, tmp_path) -> Path:
    shutil.copytree(trained_tiny[0], tmp_path / "run")
    return tmp_path / "run"


def one_error(capsys, argv: list[str], match: str) -> str:
    """The CLI exits 2 with exactly one ``error:`` line (containing ``match``) and no traceback."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert match.lower() in lines[0].lower(), lines[0]
    return lines[0]


def flip_data_bit(path: Path, offset: int = 0) -> None:
    """Flip the lowest bit of byte ``offset`` of the tensor data: a float32 stays finite, only changed."""
    data = bytearray(path.read_bytes())
    (header_len,) = struct.unpack("<Q", data[:8])
    data[8 + header_len + offset] ^= 1
    path.write_bytes(bytes(data))


def recorded(run: Path) -> list[str]:
    return [e["blake2b_128"] for e in json.loads((run / CHECKSUM_FILE).read_text())["hashes"]]


# ------------------------------------------------------------------------------------------ checksum


def test_training_records_the_checksum_of_its_weights(run):
    assert recorded(run) == [file_hash(run / MODEL_FILE)]
    assert load_run(run).model_hash == file_hash(run / MODEL_FILE)
    assert stat.S_IMODE((run / CHECKSUM_FILE).stat().st_mode) == file_mode()


def test_a_flipped_byte_in_the_weights_is_refused(run, capsys):
    flip_data_bit(run / MODEL_FILE, 4 * 37)
    with pytest.raises(UserError, match="damaged") as exc:
        load_run(run)
    assert CHECKSUM_FILE in str(exc.value) and "Restore" in str(exc.value)
    one_error(capsys, ["info", run], "checksum does not match")
    load_run(run, checkpoint=list_checkpoints(run)[-1].step)  # a checkpoint is still there to load


def test_a_file_of_another_size_says_so(run):
    from safetensors.torch import load_file, save_file

    path = run / MODEL_FILE
    save_file(load_file(str(path)), str(path), metadata={"note": "the same weights, rewritten"})
    with pytest.raises(UserError, match="bytes but was written with"):
        load_run(run)


def test_runs_without_a_record_and_damaged_records_load_unchecked(run, caplog):
    (run / CHECKSUM_FILE).unlink()  # a run written before checksums
    load_run(run)
    (run / CHECKSUM_FILE).write_text("{ not json")
    flip_data_bit(run / MODEL_FILE)  # unchecked: the record cannot say what the file was
    load_run(run)
    assert "not checked" in caplog.text


def test_replaced_weights_are_accepted_once_the_record_is_deleted(run):
    shutil.copy(list_checkpoints(run)[0].weights, run / MODEL_FILE)
    with pytest.raises(UserError, match=f"delete {CHECKSUM_FILE}"):
        load_run(run)
    (run / CHECKSUM_FILE).unlink()
    load_run(run)


class Crash(Exception):
    pass


@pytest.mark.parametrize("when", ["before the rename", "after the rename"])
def test_a_crash_between_weights_and_record_leaves_a_loadable_run(run, monkeypatch, when):
    """Either file state a killed writer can leave is accepted; the next write records one hash again."""
    import engine.checkpoint as ck
    from engine.checkpoint import save_model

    model = load_run(run).model
    old = file_hash(run / MODEL_FILE)
    for p in model.parameters():
        p.data.mul_(0.5)  # other weights, another hash
    real_write, real_json = ck.atomic_write, ck.atomic_write_json
    if when == "before the rename":
        def write(path, fn):
            real_write(path.with_name("scratch.safetensors"), fn)
            raise Crash
        monkeypatch.setattr(ck, "atomic_write", write)
    else:
        calls = []

        def write_json(path, obj):
            calls.append(path)
            if len(calls) == 2:
                raise Crash
            real_json(path, obj)
        monkeypatch.setattr(ck, "atomic_write_json", write_json)
    with pytest.raises(Crash):
        save_model(run, model, 9)
    on_disk = file_hash(run / MODEL_FILE)
    assert (on_disk == old) == (when == "before the rename")
    assert old in recorded(run) and on_disk in recorded(run) and len(recorded(run)) == 2
    load_run(run)
    monkeypatch.undo()
    save_model(run, model, 9)
    assert recorded(run) == [file_hash(run / MODEL_FILE)] != [old]
    load_run(run)


def test_import_and_synth_record_the_checksum_and_write_weights_like_json(tmp_path):
    from engine.train.synth import synth_run

    synth_run("demo", tmp_path / "synth", seed=1)
    runs = [tmp_path / "synth"]
    fx = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "openai" / "models" / "fx_a_tied_2L"
    if fx.is_dir():
        from engine.interop.openai_import import import_openai

        import_openai(fx, tmp_path / "imported", None)
        runs.append(tmp_path / "imported")
    for r in runs:
        assert recorded(r) == [file_hash(r / MODEL_FILE)], r
        assert stat.S_IMODE((r / MODEL_FILE).stat().st_mode) == file_mode() == \
            stat.S_IMODE((r / "config.json").stat().st_mode), r
        flip_data_bit(r / MODEL_FILE)
        with pytest.raises(UserError, match="damaged"):
            load_run(r)


# ------------------------------------------------------------------------------------------ circuits

N1, N2, N3 = "blocks.0.mlp.neuron:1", "blocks.0.mlp.write:0", "blocks.1.mlp.read:5"


def circuit_doc(**change) -> dict:
    doc = {"schema_version": 1, "kind": "circuit", "task": "t", "name": "c", "model_hash": "",
           "nodes": [N1, N2], "edges": [[N1, N2, 0.5]],
           "metrics": {"circuit_loss": 0.1, "target_loss": 0.15, "curve": [{"nodes": 1, "edges": 0, "loss": 0.7}],
                       "faithfulness": {"mean": {"necessity_loss": 0.7, "random_loss_std": None}},
                       "verdict": {"verdict": "faithful", "reasons": ["ok"]}, "no_ops_dropped": [N3],
                       "loss_units": "per-sequence"}}
    doc.update(change)
    return doc


def with_metric(path: list, value) -> dict:
    doc = circuit_doc()
    obj = doc["metrics"]
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value
    return doc


BAD_CIRCUITS = {
    "edge to an unknown node": (circuit_doc(edges=[[N1, N3, 0.5]]), f"names '{N3}'"),
    "edge from an unknown node": (circuit_doc(edges=[[N1, N2, 0.5], [N3, N2, 0.1]]), "edge 1"),
    "edge naming garbage": (circuit_doc(edges=[["nonsense", N2, 0.5]]), "not one of the circuit's nodes"),
    "string circuit_loss": (with_metric(["circuit_loss"], "x"), "metrics.circuit_loss must be a number"),
    "string target_loss": (with_metric(["target_loss"], "0.15"), "metrics.target_loss"),
    "bool loss": (with_metric(["circuit_loss"], True), "metrics.circuit_loss"),
    "string in the curve": (with_metric(["curve", 0, "loss"], "low"), "metrics.curve[0].loss"),
    "string in faithfulness": (with_metric(["faithfulness", "mean", "necessity_loss"], "x"), "necessity_loss"),
    "object as a loss": (with_metric(["circuit_loss"], {"a": "b"}), "metrics.circuit_loss.a"),
    "metrics a list": (circuit_doc(metrics=[["circuit_loss", 1]]), "metrics must be a JSON object"),
    "metrics a string": (circuit_doc(metrics="ab"), "metrics must be a JSON object"),
}


@pytest.mark.parametrize("case", sorted(BAD_CIRCUITS))
def test_bad_circuit_files_are_one_user_error(tmp_path, case):
    from engine.circuits.circuit import load_circuit

    doc, match = BAD_CIRCUITS[case]
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match="not a valid circuit file") as exc:
        load_circuit(path)
    assert match in str(exc.value) and "\n" not in str(exc.value)


def test_a_good_circuit_with_nulls_and_strings_where_they_belong_loads(tmp_path):
    from engine.circuits.circuit import load_circuit

    (tmp_path / "c.json").write_text(json.dumps(circuit_doc()))
    assert load_circuit(tmp_path / "c.json").n_edges == 1


def test_the_cli_refuses_a_circuit_with_unknown_edge_nodes(run, tmp_path, capsys):
    (tmp_path / "c.json").write_text(json.dumps(circuit_doc(edges=[[N1, N3, 0.5]])))
    one_error(capsys, ["faithfulness", run, tmp_path / "c.json"], "not one of the circuit's nodes")


# ------------------------------------------------------------------------------------------ configs


@pytest.mark.parametrize("section,key", [("train", "eps"), ("train", "lr"), ("sparsity", "density"),
                                         ("data", "snippet_frac"), ("train", "weight_decay")])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_config_floats_are_refused_by_validation(section, key, value):
    from engine.config import RunConfig

    cfg = RunConfig()
    part = getattr(cfg, section)
    with pytest.raises(UserError, match=rf"{section}\.{key} must be a finite number"):
        replace(cfg, **{section: replace(part, **{key: value})}).validate()


@pytest.mark.parametrize("text", ["Infinity", "-Infinity", "NaN", "1e999"])
def test_non_finite_overrides_name_their_key(text):
    from engine.config import make_config

    with pytest.raises(UserError, match=r"train\.eps must be a finite number"):
        make_config("tiny", overrides=[f"train.eps={text}"])


@pytest.mark.parametrize("change,match", [
    ({"target_loss": math.inf}, "--target-loss must be finite"),
    ({"target_loss": math.nan}, "--target-loss must be finite"),
    ({"target_loss": 0.0}, "--target-loss must be a finite number above 0"),
    ({"target_loss": -1.0}, "--target-loss must be a finite number above 0"),
    ({"k_coefs": (1e-3, math.inf)}, "--k-coefs must be finite"),
    ({"lr": math.nan}, "--lr must be finite"),
    ({"grad_clip": math.inf}, "--grad-clip must be finite"),
])
def test_prune_config_refuses_non_finite_and_non_positive_targets(change, match):
    from engine.pruning.prune import PruneConfig

    with pytest.raises(UserError, match=match):
        PruneConfig(**change).validate()


def test_a_refused_prune_never_touches_the_saved_circuit(run, tmp_path, monkeypatch):
    from engine.jobs import run_to_end
    from engine.pruning.job import prune_run
    from engine.pruning.prune import PruneConfig

    monkeypatch.setenv("CIRCUIT_INSPECTOR_DATA", str(tmp_path / "data"))
    saved = run / "circuits" / "single_double_quote" / "mean.json"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(circuit_doc()))
    before = saved.read_bytes()
    with pytest.raises(UserError, match="--target-loss must be finite"):
        run_to_end(prune_run(run, "single_double_quote", cfg=PruneConfig(target_loss=math.inf)))
    assert saved.read_bytes() == before and sorted(p.name for p in saved.parent.iterdir()) == ["mean.json"]


# ------------------------------------------------------------------------------------------ side findings


def test_labels_are_written_atomically(tmp_path, monkeypatch):
    import engine.fileio as fileio
    from engine.scene.bundle import LABELS_FILE, save_labels

    save_labels(tmp_path, {"n": "old"})
    before = (tmp_path / LABELS_FILE).read_bytes()

    def crash(_fd):
        raise OSError("disk full")
    monkeypatch.setattr(fileio.os, "fsync", crash)
    with pytest.raises(OSError):
        save_labels(tmp_path, {"n": "new"})
    assert (tmp_path / LABELS_FILE).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [LABELS_FILE]  # no temporary left
