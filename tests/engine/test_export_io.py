"""engine.scene.export without Qt: the view document's formats, atomic output, and the checks of
``circuit-engine export`` (its data exports of real runs, and ``circuit-inspector export``'s
pictures, are tested in tests/app/test_export.py)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import networkx as nx
import pytest

from engine.scene import export
from engine.cli.main import main
from engine.errors import UserError


def _doc() -> dict:
    """A small view document as the app builds it: three nodes, two weights, one of each ablated."""
    nodes = [{"id": f"blocks.0.mlp.{kind}:{i}", "label": label, "site": f"blocks.0.mlp.{kind}", "layer": 0,
              "index": i, "x": x, "y": y, "ablated": ablated, "in_circuit": True, "selected": i == 7}
             for kind, i, label, x, y, ablated in (("read", 3, "a <quote>", -1.5, 4.0, False),
                                                  ("neuron", 7, "", 0.0, 5.0, True),
                                                  ("write", 2, "out, \"x\"", 1.5, 6.0, False))]
    edges = [{"source": "blocks.0.mlp.read:3", "target": "blocks.0.mlp.neuron:7", "weight": -0.25,
              "ablated": False, "shown": True},
             {"source": "blocks.0.mlp.neuron:7", "target": "blocks.0.mlp.write:2", "weight": 0.125,
              "ablated": True, "shown": False}]
    return {"kind": "circuit-inspector/view", "schema_version": 1, "run": "/runs/r", "run_name": "r", "task": "t",
            "circuit": None, "circuit_name": None, "view": "model", "mode": "zero", "baseline": "full",
            "threshold": 0.2, "pair": 1, "selected": "blocks.0.mlp.neuron:7", "view_range": [-3.0, 3.0, 0.0, 7.0],
            "size": [800, 600], "metrics": {"full": {"loss": 0.5, "accuracy": 0.75}, "circuit": None,
                                            "now": {"loss": 0.69, "accuracy": 0.5}},
            "ablated_nodes": ["blocks.0.mlp.neuron:7"], "ablated_edges": ["blocks.0.mlp.neuron:7->blocks.0.mlp.write:2"],
            "nodes": nodes, "edges": edges}


def test_json_is_the_document(tmp_path: Path) -> None:
    doc = _doc()
    [path] = export.write_view(doc, "json", tmp_path / "v.json")
    assert json.loads(path.read_text()) == doc
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)  # shareable, not mkstemp's private 0600


def test_csv_is_two_tables(tmp_path: Path) -> None:
    paths = export.write_view(_doc(), "csv", tmp_path / "v.csv")
    assert [p.name for p in paths] == ["v.nodes.csv", "v.edges.csv"]
    assert not (tmp_path / "v.csv").exists()
    with paths[0].open() as fh:
        nodes = list(csv.DictReader(fh))
    with paths[1].open() as fh:
        edges = list(csv.DictReader(fh))
    assert [n["id"] for n in nodes] == [n["id"] for n in _doc()["nodes"]]
    assert nodes[0]["label"] == "a <quote>" and nodes[2]["label"] == 'out, "x"'  # quoting survives
    assert [n["ablated"] for n in nodes] == ["false", "true", "false"]
    assert float(nodes[2]["x"]) == 1.5 and int(nodes[1]["index"]) == 7
    assert [(e["source"], e["target"], float(e["weight"]), e["shown"]) for e in edges] == [
        ("blocks.0.mlp.read:3", "blocks.0.mlp.neuron:7", -0.25, "true"),
        ("blocks.0.mlp.neuron:7", "blocks.0.mlp.write:2", 0.125, "false")]
    # Without a .csv suffix the stem is the name as given.
    assert [p.name for p in export.output_paths(tmp_path / "view", "csv")] == ["view.nodes.csv", "view.edges.csv"]


def test_graphml_reads_back_with_networkx(tmp_path: Path) -> None:
    doc = _doc()
    [path] = export.write_view(doc, "graphml", tmp_path / "v.graphml")
    g = nx.read_graphml(path)
    assert isinstance(g, nx.DiGraph)
    assert set(g.nodes) == {n["id"] for n in doc["nodes"]}
    assert {(a, b): d["weight"] for a, b, d in g.edges(data=True)} == {
        (e["source"], e["target"]): e["weight"] for e in doc["edges"]}
    node = g.nodes["blocks.0.mlp.neuron:7"]
    assert node["ablated"] is True and node["selected"] is True and node["x"] == 0.0 and node["layer"] == 0
    assert g.nodes["blocks.0.mlp.read:3"]["label"] == "a <quote>"
    assert g.edges["blocks.0.mlp.neuron:7", "blocks.0.mlp.write:2"]["ablated"] is True
    assert g.graph["task"] == "t" and g.graph["mode"] == "zero" and g.graph["now_loss"] == 0.69
    assert "circuit_loss" not in g.graph  # None is left out (GraphML has no null)


@pytest.mark.parametrize("make_bad, match", [
    (lambda d: d / "missing" / "v.json", "does not exist"),
    (lambda d: (d / "afile").write_text("x") and d / "afile" / "v.json", "is a file, not a folder"),
    (lambda d: (d / "adir").mkdir() or d / "adir", "that is a folder"),
])
def test_unwritable_outputs_are_user_errors(tmp_path: Path, make_bad, match) -> None:
    out = make_bad(tmp_path)
    with pytest.raises(UserError, match=match):
        export.write_view(_doc(), "json", out)
    with pytest.raises(UserError, match=match):
        export.write_image(b"\x89PNG", "png", out)


def test_a_failed_write_leaves_the_old_files_and_no_temporaries(tmp_path: Path, monkeypatch) -> None:
    """A write that fails (here: the rename of the first of the two CSV files) keeps the older export
    as it was and leaves no temporary file behind."""
    old = export.write_view(_doc(), "csv", tmp_path / "v.csv")
    before = {p: p.read_bytes() for p in old}
    doc = _doc()
    doc["nodes"][0]["label"] = "changed"
    real_replace = os.replace

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export.os, "replace", failing_replace)
    with pytest.raises(UserError, match="No space left on device"):
        export.write_view(doc, "csv", tmp_path / "v.csv")
    monkeypatch.setattr(export.os, "replace", real_replace)
    assert {p: p.read_bytes() for p in old} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.edges.csv", "v.nodes.csv"]


def test_cli_checks_before_loading_anything(tmp_path: Path, capsys, monkeypatch) -> None:
    """These fail fast, before the run is loaded; pictures are the app's, said in one line."""
    from engine.scene import headless

    monkeypatch.setattr(headless, "load_bundle", lambda *a, **k: pytest.fail("the run was loaded"))
    cases = [
        (["export", "demo", "--format", "json", "--out", str(tmp_path / "no" / "x.json")], "does not exist"),
        (["export", "demo", "--format", "json", "--out", str(tmp_path)], "that is a folder"),
        (["export", "demo", "--format", "png", "--out", str(tmp_path / "x.png"), "--scale", "9"],
         "scale must be between"),
        (["export", "demo", "--format", "gif", "--out", str(tmp_path / "x.gif")], "invalid choice"),
    ]
    for fmt in ("png", "svg"):
        cases.append((["export", "demo", "--format", fmt, "--out", str(tmp_path / f"x.{fmt}")],
                      f"{fmt} pictures are drawn by the desktop app: run `circuit-inspector export`"))
    for argv, match in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and match in err and "Traceback" not in err, (argv, err)
        assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_export_options_parse() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    export.add_export_arguments(parser)
    args = parser.parse_args(["runs/x", "--format", "png", "--out", "o.png", "--scale", "2", "--size", "800x600",
                              "--ablate", "blocks.0.attn.q:1,blocks.0.attn.read:2->blocks.0.attn.q:1",
                              "--mode", "zero", "--view", "model", "--circuit", "t", "--session", "s.json"])
    assert (args.scale, args.size, args.mode, args.view, args.json) == (2.0, (800, 600), "zero", "model", False)
    assert export.parse_ablate(args.ablate) == (("blocks.0.attn.q:1",), ("blocks.0.attn.read:2->blocks.0.attn.q:1",))
