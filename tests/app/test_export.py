"""Exporting the view (pytest-qt, offscreen, a tiny real run): every format from the window, the
same headless through ``circuit-engine export``, and the bad paths.

Waits are on signals or conditions, never sleeps.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtSvg import QSvgRenderer

from app.widgets import dialogs

from app.window import export

from app.window import session as session_view
from app.widgets.export_dialog import ExportChoice, ExportDialog
from engine.scene.session import write_session
from engine import api
from app.export.command import main as app_export
from engine.cli.main import main as cli_main

SVG = "{http://www.w3.org/2000/svg}"
EVAL_TIMEOUT_MS = 60_000
REPO = Path(__file__).resolve().parents[2]


def settle(qtbot, win) -> None:
    """Wait until the metrics belong to the ablation on screen."""
    qtbot.waitUntil(lambda: export.current_result(win.state) is not None, timeout=EVAL_TIMEOUT_MS)


@pytest.fixture
def win(open_window, fresh_tiny_run, qtbot, errors):
    """The tiny run's circuit with two ablated nodes, one ablated weight, a selection and a label."""
    w = open_window(fresh_tiny_run)
    s, g = w.state, w.state.graph
    s.set_ablation([g.ids[3], g.ids[20]], [g.edge_id(0)], "test")
    s.select(g.ids[5])
    s.set_label(g.ids[5], "my node")
    s.set_pair(1)
    settle(qtbot, w)
    return w


def svg_nodes(path: Path) -> list[ET.Element]:
    return [e for e in ET.parse(path).iter(f"{SVG}circle") if e.get("class") == "node"]


def nodes_in_view(win) -> set[str]:
    (x0, x1), (y0, y1) = win.view.vb.viewRange()
    g, p = win.view.graph, win.view.graph.pos
    inside = (p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1)
    return {g.ids[i] for i in np.flatnonzero(inside)}


def test_png_decodes_at_the_requested_scale(win, tmp_path: Path) -> None:
    w, h = export.view_size(win)
    for scale in (1, 2, 4):
        [path] = export.export_view(win, "png", tmp_path / f"v{scale}.png", scale)
        image = QImage(str(path))
        assert not image.isNull() and (image.width(), image.height()) == (w * scale, h * scale)
    one, two = QImage(str(tmp_path / "v1.png")), QImage(str(tmp_path / "v2.png"))
    # The same picture at twice the resolution (not a blank image): downscaled, it is close to 1x.
    small = two.scaled(w, h).convertToFormat(QImage.Format.Format_RGB32)
    a = np.frombuffer(one.convertToFormat(QImage.Format.Format_RGB32).constBits(), np.uint8).reshape(h, -1)
    b = np.frombuffer(small.constBits(), np.uint8).reshape(h, -1)
    assert len(np.unique(a)) > 20
    assert np.mean(np.abs(a.astype(int) - b.astype(int))) < 12
    assert "Exported the view" in win.statusBar().currentMessage()


def test_svg_renders_back_and_shows_the_views_nodes(win, tmp_path: Path) -> None:
    [path] = export.export_view(win, "svg", tmp_path / "fit.svg")
    renderer = QSvgRenderer(str(path))
    assert renderer.isValid()
    assert (renderer.defaultSize().width(), renderer.defaultSize().height()) == export.view_size(win)
    nodes = svg_nodes(path)
    assert len(nodes) == win.view.graph.n_nodes == len(nodes_in_view(win))  # fitted: every node
    assert {n.get("data-id") for n in nodes} == set(win.view.graph.ids)
    labelled = next(n for n in nodes if n.get("data-id") == win.state.selected)
    assert labelled.find(f"{SVG}title").text == f"{win.state.selected}: my node"
    text = path.read_text()
    assert ">my node<" in text  # the caption
    # Zoomed in: only what the view shows, ablated marks included.
    g = win.view.graph
    x, y = g.pos[g.index[win.state.selected]]
    win.view.vb.setRange(xRange=(x - 3.3, x + 4.7), yRange=(y - 2.5, y + 2.5), padding=0)
    [path] = export.export_view(win, "svg", tmp_path / "zoom.svg")
    shown = nodes_in_view(win)
    assert 0 < len(shown) < g.n_nodes
    assert {n.get("data-id") for n in svg_nodes(path)} == shown
    root = ET.parse(path).getroot()
    ablated = next(e for e in root.iter(f"{SVG}g") if e.get("class") == "ablated")
    assert len(ablated.findall(f"{SVG}circle")) == len(shown & win.state.ablation.nodes)
    assert len([e for e in root.iter(f"{SVG}circle") if e.get("class") == "selected"]) == 1


def test_graphml_json_csv_hold_the_circuit_and_the_ablation(win, tmp_path: Path) -> None:
    b, s = win.state.bundle, win.state
    circuit = api.load_circuit(b.circuit_path)
    [gml] = export.export_view(win, "graphml", tmp_path / "v.graphml")
    g = nx.read_graphml(gml)
    assert set(g.nodes) == {str(n) for n in circuit.nodes}
    assert {(a, c): pytest.approx(d["weight"]) for a, c, d in g.edges(data=True)} == {
        (a, c): pytest.approx(float(wt)) for a, c, wt in zip(circuit.edges.src, circuit.edges.dst, circuit.edges.weight)}
    assert {n for n, d in g.nodes(data=True) if d["ablated"]} == set(s.ablation.nodes)
    assert g.nodes[s.selected]["label"] == "my node" and g.nodes[s.selected]["selected"] is True

    [js] = export.export_view(win, "json", tmp_path / "v.json")
    doc = json.loads(js.read_text())
    graph = win.view.graph
    assert [n["id"] for n in doc["nodes"]] == list(graph.ids)
    assert [[n["x"], n["y"]] for n in doc["nodes"]] == graph.pos.tolist()
    assert {e["source"] + "->" + e["target"] for e in doc["edges"] if e["ablated"]} == set(s.ablation.edges)
    assert (doc["mode"], doc["task"], doc["run"], doc["pair"]) == (s.mode, b.task.name, str(b.run_path), 1)
    assert doc["metrics"]["now"]["loss"] == pytest.approx(s.evaluation.result.loss)
    assert doc["metrics"]["full"]["loss"] == pytest.approx(b.full.loss)
    assert doc["view_range"] == pytest.approx([v for r in win.view.vb.viewRange() for v in r])

    nodes_csv, edges_csv = export.export_view(win, "csv", tmp_path / "v.csv")
    with nodes_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == list(graph.ids)
    assert {r["id"] for r in rows if r["ablated"] == "true"} == set(s.ablation.nodes)
    assert {r["id"]: r["label"] for r in rows if r["label"]}[s.selected] == "my node"
    with edges_csv.open() as fh:
        assert len(list(csv.DictReader(fh))) == graph.n_edges


def test_export_to_an_unwritable_place_is_a_dialog(win, tmp_path: Path, errors) -> None:
    tmp_path = tmp_path / "out"  # (the run's copy lives in tmp_path/run)
    tmp_path.mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "taken.png").mkdir()
    for out in (tmp_path / "afile" / "v.png", tmp_path / "nope" / "v.svg", tmp_path / "taken.png"):
        fmt = out.suffix[1:]
        assert export.export_view(win, fmt, out) is None
        title, text = errors[-1]
        assert title == "Cannot export" and "cannot write" in text and "Nothing was written" in text
    assert len(errors) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "taken.png"]  # no temporaries
    assert win.isVisible() and export.export_view(win, "json", tmp_path / "ok.json")  # keeps working


def test_export_action_and_dialog(win, tmp_path: Path, monkeypatch, qtbot) -> None:
    asked = []

    def fake_ask(parent, start, size):
        asked.append((start, size))
        return ExportChoice("png", tmp_path / "menu.png", 2.0)

    monkeypatch.setattr(dialogs, "ask_export", fake_ask)
    win.menu_actions.export.trigger()
    assert asked[0][1] == export.view_size(win) and asked[0][0].suffix == ".png"
    assert QImage(str(tmp_path / "menu.png")).width() == 2 * export.view_size(win)[0]
    # The dialog itself: the format decides the suffix, the scale only applies to PNG.
    dialog = ExportDialog(win, tmp_path / "x.png", (400, 300))
    qtbot.addWidget(dialog)
    dialog.scale_combo.setCurrentIndex(2)
    assert dialog.choice() == ExportChoice("png", tmp_path / "x.png", 4.0)
    assert "1600 x 1200" in dialog.size_label.text()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("svg"))
    assert dialog.choice() == ExportChoice("svg", tmp_path / "x.svg", 1.0) and not dialog.scale_combo.isEnabled()


def _pixels(path: Path) -> np.ndarray:
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB32)
    return np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), image.width()).copy()


def test_cli_png_equals_the_apps_export(win, tmp_path: Path) -> None:
    """Save the window's session, export it headless at the view's size: the same picture."""
    [app_png] = export.export_view(win, "png", tmp_path / "app.png")
    session = write_session(tmp_path / "s.json", session_view.capture(win))
    w, h = export.view_size(win)
    assert app_export([str(win.state.bundle.run_path), "--session", str(session), "--format", "png",
                     "--out", str(tmp_path / "cli.png"), "--size", f"{w}x{h}"]) == 0
    a, b = _pixels(app_png), _pixels(tmp_path / "cli.png")
    assert a.shape == b.shape == (h, w)
    assert np.mean(a != b) <= 0.001  # equal but for, at most, a last digit of a metric


@pytest.mark.parametrize("fmt", ["svg", "graphml", "json", "csv"])
def test_cli_exports_each_format(fmt: str, fresh_tiny_run: Path, tmp_path: Path, capsys) -> None:
    run = fresh_tiny_run
    circuit = api.load_circuit(next((run / "circuits").glob("*/*.json")))
    ablate = [str(circuit.nodes[2]), f"{circuit.edges.src[0]}->{circuit.edges.dst[0]}"]
    out = tmp_path / f"v.{fmt}"
    argv = [str(run), "--circuit", circuit.task, "--format", fmt, "--out", str(out), "--ablate", ",".join(ablate), "--json"]
    # pictures: the app's exporter; data: the engine's (no Qt) and the app's write the same files
    assert (app_export(argv) if fmt == "svg" else cli_main(["export", *argv])) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    if fmt != "svg":
        engine_files = {p: Path(p).read_bytes() for p in result["paths"]}
        assert app_export(argv) == 0
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
        assert {p: Path(p).read_bytes() for p in result["paths"]} == engine_files
    assert (result["nodes"], result["edges"]) == (circuit.n_nodes, circuit.n_edges)
    ids = {str(n) for n in circuit.nodes}
    if fmt == "svg":
        assert QSvgRenderer(str(out)).isValid()
        assert {n.get("data-id") for n in svg_nodes(out)} == ids
    elif fmt == "graphml":
        g = nx.read_graphml(out)
        assert set(g.nodes) == ids and g.number_of_edges() == circuit.n_edges
        assert [n for n, d in g.nodes(data=True) if d["ablated"]] == ablate[:1]
    elif fmt == "json":
        doc = json.loads(out.read_text())
        assert {n["id"] for n in doc["nodes"]} == ids and doc["ablated_edges"] == ablate[1:]
        ablator = api.make_ablator(run, circuit.task, circuit=circuit.task, n_pairs=24)
        expected = ablator.evaluate(ablate[:1], ablate[1:], "mean", "circuit")
        assert doc["metrics"]["now"]["loss"] == pytest.approx(expected.loss, abs=1e-6)
    else:
        nodes, edges = (tmp_path / "v.nodes.csv"), (tmp_path / "v.edges.csv")
        assert [Path(p) for p in result["paths"]] == [nodes, edges] and not out.exists()
        assert len(nodes.read_text().splitlines()) == 1 + circuit.n_nodes
        assert len(edges.read_text().splitlines()) == 1 + circuit.n_edges


def test_a_narrow_picture_wraps_the_metrics_instead_of_cutting_them(fresh_tiny_run: Path, tmp_path: Path,
                                                                    capsys) -> None:
    out = tmp_path / "narrow.svg"
    assert app_export([str(fresh_tiny_run), "--format", "svg", "--out", str(out), "--size", "420x700",
                     "--ablate", api.load_circuit(next((fresh_tiny_run / "circuits").glob("*/*.json"))).nodes[0].__str__()]) == 0
    metrics = [t.text or "" for t in ET.parse(out).getroot().iter(f"{SVG}text")
               if t.get("font-size") == "11" and float(t.get("y")) < 100]  # the lines under the title
    assert len(metrics) >= 2 and not any(t.endswith("…") for t in metrics), metrics
    joined = " ".join(metrics)
    assert joined.startswith("mean ablation") and "1 node" in joined and joined.endswith(")")  # all of it


def test_headless_user_errors(fresh_tiny_run: Path, tiny_run_factory, tmp_path: Path, capsys) -> None:
    """The headless view's checks, through both commands."""
    out = str(tmp_path / "v.json")
    bare = tiny_run_factory(tmp_path / "bare", circuit=False)
    (tmp_path / "bad.json").write_text('{"kind": "session", "view": "sideways"}')
    cases = [
        ([str(tmp_path / "norun")], "not found"),
        ([str(fresh_tiny_run), "--ablate", "blocks.7.mlp.neuron:1"], "not a node of this model"),
        ([str(fresh_tiny_run), "--ablate", "blocks.0.mlp.read:0->blocks.1.mlp.neuron:0"], "not a nonzero weight"),
        ([str(fresh_tiny_run), "--mode", "resample"], "activation store"),
        ([str(bare), "--circuit", "single_double_quote"], "no circuit for task"),
        ([str(fresh_tiny_run), "--session", str(tmp_path / "bad.json")], "view must be one of"),
        ([str(fresh_tiny_run), "--circuit", str(tmp_path / "missing.json")], "not found"),
    ]
    for args, match in cases:
        for command in (app_export, lambda argv: cli_main(["export", *argv])):
            assert command([*args, "--format", "json", "--out", out]) == 2, args
            err = capsys.readouterr().err
            assert err.startswith("error: ") and match in err, (args, err)
    assert not (tmp_path / "v.json").exists()


def test_picture_checks_come_before_loading_the_run(tmp_path: Path, capsys, monkeypatch) -> None:
    from engine.scene import headless

    monkeypatch.setattr(headless, "load_bundle", lambda *a, **k: pytest.fail("the run was loaded"))
    cases = [
        (["demo", "--format", "png", "--out", str(tmp_path / "no" / "x.png")], "does not exist"),
        (["demo", "--format", "png", "--out", str(tmp_path / "x.png"), "--size", "8000x8000", "--scale", "4"],
         "too large"),
        (["demo", "--format", "svg", "--out", str(tmp_path / "x.svg"), "--scale", "9"], "scale must be between"),
    ]
    for argv, match in cases:
        assert app_export(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and match in err and "Traceback" not in err, (argv, err)
    assert list(tmp_path.iterdir()) == []


def test_without_pyside6_data_exports_work_and_pictures_say_what_to_install(fresh_tiny_run: Path,
                                                                           tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "sys.modules['PySide6'] = None; sys.modules['pyqtgraph'] = None\n"
        "from app.export.command import main\n"
        f"png = main([{str(fresh_tiny_run)!r}, '--format', 'png', '--out', {str(tmp_path / 'v.png')!r}])\n"
        f"js = main([{str(fresh_tiny_run)!r}, '--format', 'json', '--out', {str(tmp_path / 'v.json')!r}])\n"
        "print('codes', png, js)\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert "codes 2 0" in proc.stdout, proc.stderr
    assert "error: png/svg export needs the gui extra: pip install 'circuit-inspector[gui]'" in proc.stderr
    assert json.loads((tmp_path / "v.json").read_text())["nodes"] and not (tmp_path / "v.png").exists()


def test_fit_shows_every_input_token_even_when_the_circuit_is_narrower(win) -> None:
    from engine.scene.layout import token_positions

    tv, view = win.state.bundle.task_view, win.view
    xs = token_positions(view.graph.width, len(tv.tokens[2 * win.state.pair]))
    assert np.abs(xs).max() > view.graph.width / 2 + 1.0  # this tiny circuit is narrower than its prompt
    view.fit()
    (x0, x1), _ = view.vb.viewRange()
    assert x0 <= xs.min() and xs.max() <= x1


def test_many_weights_of_one_style_are_all_drawn(qapp) -> None:
    """Qt's SVG reader truncates a path of 2^15 commands or more, which cut csp_yolo1's whole-model
    picture to its first weights: a style's segments are split over paths, and the last one shows."""
    from app.export.render import PATH_SEGMENTS, _line_path, rasterise

    n = 20_000
    segs = np.zeros((n, 4))
    segs[:, [0, 2]] = [5.0, 15.0]  # every segment but the last in the top-left corner
    segs[:, [1, 3]] = 5.0
    segs[-1] = [50.0, 80.0, 150.0, 80.0]  # the last one alone, across the middle
    body = _line_path(segs, (255, 0, 0, 255), 3.0, cls="edges")
    assert body.count("<path") == -(-n // PATH_SEGMENTS) and all(
        p.count("M") <= PATH_SEGMENTS for p in body.split("<path")[1:])
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100">{body}</svg>'
    image = rasterise(svg, (200, 100))
    assert image.pixelColor(100, 80).red() > 200 and image.pixelColor(100, 80).green() < 60
