"""Focus and compare on hand-built graphs (engine/scene/focus.py): k-hop neighbourhoods over weights,
q-k and residual links; the degree filter at a |w| threshold; the diff of two circuits and the union's
layout; and ``circuit-engine diff`` on a run folder (engine/scene/diff.py, engine/cli/diff.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from engine.scene.focus import (A_ONLY, B_ONLY, BOTH, FocusSettings, circuit_diff, degree_mask, degrees, diff_view,
                                emphasis, lit_edges, neighbourhood)
from engine.scene.layout import ModelShape, build_graph

SHAPE = ModelShape(n_layer=1, n_head=1, d_head=2, d_resid=4, d_model=4, d_mlp=4)
R0, R1 = "blocks.0.attn.read:0", "blocks.0.attn.read:1"
Q0, K0, V1 = "blocks.0.attn.q:0", "blocks.0.attn.k:0", "blocks.0.attn.v:1"
W2, M2, N3, MW0 = "blocks.0.attn.write:2", "blocks.0.mlp.read:2", "blocks.0.mlp.neuron:3", "blocks.0.mlp.write:0"
LONE = "blocks.0.mlp.neuron:1"
EDGES = ((R0, Q0, 0.5), (R1, K0, -0.4), (R1, V1, 0.3), (V1, W2, 0.6), (M2, N3, 0.05), (N3, MW0, -0.7))


def graph():
    ids = [R0, R1, Q0, K0, V1, W2, M2, N3, MW0, LONE]
    src, dst, w = zip(*EDGES)
    return build_graph(SHAPE, ids, src, dst, np.array(w, np.float32))


def names(g, mask) -> set[str]:
    return {g.ids[i] for i in np.flatnonzero(mask)}


def test_the_hand_built_graph_has_the_links_the_tests_walk() -> None:
    g = graph()
    assert [(g.ids[a], g.ids[b]) for a, b in g.qk] == [(Q0, K0)]
    resid = {frozenset((g.ids[a], g.ids[b])) for a, b in g.resid}
    assert frozenset((W2, M2)) in resid and frozenset((R0, MW0)) in resid  # channel 2 and channel 0 columns


def test_k_hop_neighbourhoods_over_weights_qk_and_residual_links() -> None:
    g = graph()
    assert names(g, neighbourhood(g, Q0, 0)) == {Q0}  # k = 0: the node alone
    assert names(g, neighbourhood(g, Q0, 1)) == {Q0, R0, K0}  # its weight in and its key (q-k link)
    assert names(g, neighbourhood(g, Q0, 2)) == {Q0, R0, K0, R1, MW0}  # the key's read; the read's column
    assert names(g, neighbourhood(g, Q0, 2, residual=False)) == {Q0, R0, K0, R1}
    assert names(g, neighbourhood(g, V1, 1)) == {V1, R1, W2}  # in and out: both directions
    assert names(g, neighbourhood(g, LONE, 5)) == {LONE}
    assert not neighbourhood(g, "blocks.0.mlp.neuron:2", 1).any()  # not in the graph: nothing
    assert names(g, neighbourhood(g, N3, 1)) == {N3, M2, MW0}
    assert names(g, neighbourhood(g, N3, 1, threshold=0.1)) == {N3, MW0}  # the weak weight is hidden
    everything = neighbourhood(g, Q0, 20)
    assert names(g, everything) == set(g.ids) - {LONE}


def test_degree_filter_counts_shown_weights_in_and_out() -> None:
    g = graph()
    deg = dict(zip(g.ids, degrees(g).tolist()))
    assert deg[R1] == 2 and deg[V1] == 2 and deg[N3] == 2 and deg[Q0] == 1 and deg[LONE] == 0
    assert names(g, degree_mask(g, 2)) == {R1, V1, N3}
    assert names(g, degree_mask(g, 2, threshold=0.1)) == {R1, V1}  # N3 keeps one weight above 0.1
    assert degree_mask(g, 0).all()


def test_emphasis_composes_focus_and_degree_and_lights_edges_between_bright_nodes() -> None:
    g = graph()
    assert emphasis(g, Q0, FocusSettings()) is None  # nothing on: every node bright
    assert emphasis(g, None, FocusSettings(on=True)) is None  # focus without a selection
    assert emphasis(g, Q0, FocusSettings(on=True, hops=1)) == {Q0, R0, K0}
    assert emphasis(g, None, FocusSettings(min_degree=2)) == {R1, V1, N3}
    # both: the intersection, and the focused node stays bright although its degree is 1
    assert emphasis(g, V1, FocusSettings(on=True, hops=1, min_degree=2)) == {V1, R1}
    lit = np.array([i in {Q0, R0, K0} for i in g.ids])
    edges, qk = lit_edges(g, lit)
    assert {g.edge_id(e) for e in np.flatnonzero(edges)} == {f"{R0}->{Q0}"}
    assert qk.tolist() == [True]
    assert lit_edges(g, None) == (None, None)
    with pytest.raises(ValueError, match="hops"):
        FocusSettings(hops=-1)
    with pytest.raises(ValueError, match="min_degree"):
        FocusSettings(min_degree=1.5)


def circuit(name, nodes, edges):
    src, dst, w = zip(*edges) if edges else ((), (), ())
    return SimpleNamespace(name=name, nodes=tuple(nodes),
                           edges=SimpleNamespace(src=src, dst=dst, weight=np.array(w, np.float32)))


def test_circuit_diff_sets_and_the_union_layout_keeps_positions() -> None:
    a = circuit("mean", [R0, Q0, R1, K0, V1, W2], [(R0, Q0, 0.5), (R1, K0, -0.4), (R1, V1, 0.3), (V1, W2, 0.6)])
    b = circuit("zero", [R1, K0, V1, W2, M2, N3], [(R1, K0, -0.45), (V1, W2, 0.6), (M2, N3, 0.05)])
    d = circuit_diff(a, b)
    assert d.nodes_a == (R0, Q0) and d.nodes_b == (M2, N3) and set(d.nodes_both) == {R1, K0, V1, W2}
    assert d.edges_a == (f"{R0}->{Q0}", f"{R1}->{V1}") and d.edges_b == (f"{M2}->{N3}",)
    assert set(d.edges_both) == {f"{R1}->{K0}", f"{V1}->{W2}"}
    assert d.counts() == {"nodes": {"a": 2, "b": 2, "both": 4}, "weights": {"a": 2, "b": 1, "both": 2}}
    assert d.summary().startswith("circuit mean vs zero: 2 nodes only in mean, 2 only in zero, 4 in both")
    view = diff_view(SHAPE, a, b)
    g = view.graph
    side = dict(zip(g.ids, view.node_side.tolist()))
    assert side[R0] == A_ONLY and side[N3] == B_ONLY and side[V1] == BOTH and len(g.ids) == 8
    esides = {g.edge_id(e): int(s) for e, s in enumerate(view.edge_side)}
    assert esides == {f"{R0}->{Q0}": A_ONLY, f"{R1}->{V1}": A_ONLY, f"{M2}->{N3}": B_ONLY,
                      f"{R1}->{K0}": BOTH, f"{V1}->{W2}": BOTH}
    k = next(e for e in range(g.n_edges) if g.edge_id(e) == f"{R1}->{K0}")
    assert g.weight[k] == pytest.approx(-0.4) and view.weight_b[k] == pytest.approx(-0.45)  # A's value; B's kept
    assert np.isnan(view.weight_b[[e for e in range(g.n_edges) if g.edge_id(e) == f"{R0}->{Q0}"][0]])
    # A and B drawn in the union's frame put every node where the diff view has it
    for c in (a, b):
        alone = build_graph(SHAPE, list(c.nodes), c.edges.src, c.edges.dst, c.edges.weight, layout_ids=g.ids)
        for node in c.nodes:
            assert np.array_equal(alone.pos[alone.index[node]], g.pos[g.index[node]]), node


# ---------------------------------------------------------------------------------------------
# circuit-engine diff on a run folder (config and circuits only: the diff reads no weights)

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo" / "sparse"
TASK = "single_double_quote"


@pytest.fixture
def run_with_two_circuits(tmp_path: Path) -> tuple[Path, dict]:
    run = tmp_path / "run"
    (run / "circuits" / TASK / "formation").mkdir(parents=True)
    shutil.copy(DEMO / "config.json", run / "config.json")
    mean = json.loads((DEMO / "circuits" / TASK / "mean.json").read_text())
    (run / "circuits" / TASK / "mean.json").write_text(json.dumps(mean))
    drop = mean["nodes"][0]
    other = dict(mean, name="zero", nodes=[n for n in mean["nodes"] if n != drop] + ["blocks.0.mlp.neuron:0"],
                 edges=[e for e in mean["edges"] if drop not in e[:2]])
    (run / "circuits" / TASK / "formation" / "step_0000500.json").write_text(json.dumps(other))
    return run, {"dropped": drop, "mean": mean, "other": other}


def test_cli_diff_names_files_and_json(run_with_two_circuits, capsys) -> None:
    from engine.cli.main import main

    run, c = run_with_two_circuits
    assert main(["diff", str(run), "--task", TASK, "mean", "step_0000500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["a"]["name"] == "mean" and out["b"]["name"] == "step 500"
    assert out["nodes"]["a"] == [c["dropped"]] and out["nodes"]["b"] == ["blocks.0.mlp.neuron:0"]
    assert out["counts"]["nodes"]["both"] == len(c["mean"]["nodes"]) - 1
    lost = len(c["mean"]["edges"]) - len(c["other"]["edges"])
    assert out["counts"]["weights"] == {"a": lost, "b": 0, "both": len(c["other"]["edges"])}
    # files work without --task; the text form prints the summary and the lists
    b_file = run / "circuits" / TASK / "formation" / "step_0000500.json"
    assert main(["diff", str(run), str(run / "circuits" / TASK / "mean.json"), str(b_file)]) == 0
    text = capsys.readouterr().out
    assert "1 node only in mean" in text and c["dropped"] in text and "blocks.0.mlp.neuron:0" in text


@pytest.mark.parametrize("argv, match", [
    (["--task", TASK, "mean", "nosuch"], "no circuit 'nosuch' for task single_double_quote .* its circuits: "
                                         "formation/step_0000500, mean"),
    (["mean", "step_0000500"], "give its task"),
    (["--task", TASK, "mean", "/nowhere/c.json"], "circuit file not found"),
])
def test_cli_diff_bad_input_is_one_error_line(run_with_two_circuits, capsys, argv, match) -> None:
    import re

    from engine.cli.main import main

    run, _ = run_with_two_circuits
    assert main(["diff", str(run), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and re.search(match, err[0]), err


def test_cli_diff_refuses_a_circuit_of_another_model(run_with_two_circuits, tmp_path, capsys) -> None:
    from engine.cli.main import main

    run, c = run_with_two_circuits
    alien = tmp_path / "alien.json"
    alien.write_text(json.dumps(dict(c["mean"], nodes=c["mean"]["nodes"] + ["blocks.7.mlp.neuron:0"])))
    assert main(["diff", str(run), "--task", TASK, "mean", str(alien)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "made for another model" in err[0] and "blocks.7.mlp.neuron:0" in err[0]


# ---------------------------------------------------------------------------------------------
# Session keys and the headless export of a diff with a focus


def test_session_focus_keys_read_write_and_bad_values(tmp_path: Path) -> None:
    from engine.scene.session import Session, SessionError, read_session, write_session

    path = write_session(tmp_path / "s.json", Session(run="demo", focus=True, focus_hops=3, min_degree=2,
                                                      diff="circuits/x/zero.json"))
    data = json.loads(path.read_text())
    assert (data["focus"], data["focus_hops"], data["min_degree"], data["diff"]) == (True, 3, 2, "circuits/x/zero.json")
    back = read_session(path)
    assert (back.focus, back.focus_hops, back.min_degree, back.diff) == (True, 3, 2, "circuits/x/zero.json")
    old = tmp_path / "old.json"  # a file from before these keys: focus off
    old.write_text(json.dumps({"kind": "session", "schema_version": 2, "run": "demo"}))
    assert (read_session(old).focus, read_session(old).focus_hops, read_session(old).diff) == (False, 1, None)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "session", "focus": "yes", "focus_hops": -1, "min_degree": 2.5}))
    with pytest.raises(SessionError, match="focus"):
        read_session(bad)
    lenient = read_session(bad, drop_invalid=True)
    assert (lenient.focus, lenient.focus_hops, lenient.min_degree) == (False, 1, 0) and len(lenient.dropped) == 3


def test_export_of_a_diff_with_a_focus(run_with_two_circuits, tmp_path: Path, capsys) -> None:
    """circuit-engine export --diff B --focus NODE: every node and weight with its side and emphasis
    (the demo's weights; circuit B is a file next to A)."""
    from engine.cli.main import main

    _, c = run_with_two_circuits
    b_file = tmp_path / "b.json"
    b_file.write_text(json.dumps(c["other"]))
    node = c["mean"]["edges"][0][1]
    out = tmp_path / "v.json"
    assert main(["export", "demo", "--circuit", TASK, "--diff", str(b_file), "--focus", node, "--hops", "1",
                 "--format", "json", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    sides = {n["id"]: n["side"] for n in doc["nodes"]}
    assert sides[c["dropped"]] == "a" and sides["blocks.0.mlp.neuron:0"] == "b"
    assert doc["diff"]["counts"]["nodes"] == {"a": 1, "b": 1, "both": len(c["mean"]["nodes"]) - 1}
    assert doc["focus"] == {"on": True, "hops": 1, "min_degree": 0} and doc["selected"] == node
    lit = {n["id"] for n in doc["nodes"] if n["emphasised"]}
    assert node in lit and 1 < len(lit) < len(doc["nodes"])
    assert all(e["emphasised"] == (e["source"] in lit and e["target"] in lit) for e in doc["edges"])
    assert all((e["weight_b"] is None) == (e["side"] == "a") for e in doc["edges"])
    capsys.readouterr()
    assert main(["export", "demo", "--circuit", TASK, "--hops", "-2", "--format", "json", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --hops") and "0 to 20" in err[0]
