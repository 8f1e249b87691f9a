"""The view document of a circuit and its data formats: JSON, CSV and GraphML writers, atomic output, and the export options.

**The view document** is a JSON-shaped dict that describes one view of a circuit (or of the whole
model) exactly as the app draws it; :func:`engine.scene.snapshot.view_document` builds it:

    {"kind": "circuit-inspector/view", "schema_version": 1, "run": PATH, "run_name": "demo",
     "task": "single_double_quote", "circuit": PATH | null, "circuit_name": "mean" | null,
     "view": "circuit" | "model", "mode": "mean" | "zero" | "resample", "baseline": "circuit" | "full",
     "threshold": |w| below which weights are hidden, "pair": the task pair shown, "selected": NODE | null,
     "view_range": [x0, x1, y0, y1] (layout units), "size": [width, height] (pixels),
     "metrics": {"full": {"loss", "accuracy"}, "circuit": {"loss", "accuracy", "ablation"} | null,
                 "now": {...} | null},
     "ablated_nodes": [NODE, ...], "ablated_edges": ["SRC->DST", ...],
     "focus": {"on", "hops", "min_degree"} | null, "diff": {"a", "b", "a_circuit", "b_circuit", "counts"} | null,
     "attribution": {"pair", "edges_show", "side", "effects_mode", "edge", "node"} | null,
     "nodes": [{"id", "label", "site", "layer", "index", "x", "y", "ablated", "in_circuit", "selected"}],
     "edges": [{"source", "target", "weight", "ablated", "shown"}]}

With a focus or a degree filter every node and edge also has ``emphasised`` (drawn bright); in a diff
(the union of circuits A and B, ``in_circuit`` meaning "in A") every node and edge has ``side``
("a", "b" or "both") and every edge ``weight_b``, its value in B (null where B lacks it). With the
selected pair traced (the window's exports always, headless ones always), every edge has
``attribution_a`` / ``attribution_b`` (the weight times its source's signal on prompt A / B) and
every node ``effect_a`` / ``effect_b`` (the estimated change of that prompt's logit difference when
the node alone is ablated; null where its site was not traced), and the document's ``attribution``
says which pair, what the edges show and how both are defined (:mod:`engine.scene.attribution`).
CSV adds them as the last columns.

``metrics.circuit`` is the circuit alone; its ``ablation`` says how everything outside the circuit was
ablated: the mode the circuit was pruned with (mean) in mean mode, the view's mode in zero and resample
mode (as the ``circuit`` baseline of ``now`` is). ``x`` and ``y`` are the layout's coordinates (``y`` is the row: 0 = input tokens, then six rows per
layer, upwards; ``x`` is centred on 0). ``shown`` is false for weights below the |w| threshold.
:func:`write_view` writes it as JSON, as CSV or as GraphML; :func:`write_image` writes a rendered
PNG or SVG. **CSV is two files**, one table each, because nodes and edges have different columns:
``OUT.nodes.csv`` and ``OUT.edges.csv`` (``OUT`` is ``--out`` without its ``.csv``); the columns
are the keys above, booleans are ``true``/``false``, and the headers (``id``, ``label``,
``source``, ``target``, ``weight``) are the ones Gephi's spreadsheet import expects.

**Nothing is half-written**: every file of an export goes to a temporary file in the target folder
first, and none is renamed into place before all of them are completely written (each rename is
atomic). A failure removes the temporaries, leaves any older export untouched and raises
:class:`UserError` saying what to do.

**Who writes what.** Node positions come from :mod:`engine.scene.layout` and the document from
:mod:`engine.scene.snapshot`, both without Qt, so ``circuit-engine export`` writes GraphML, JSON
and CSV by itself (:mod:`engine.scene.headless` builds the view as the window would). Pictures
(PNG, SVG) are drawn by the desktop app's renderer: ``circuit-inspector export`` takes the same
options and writes every format; ``circuit-engine export --format png|svg`` says so in one
``error:`` line (the engine never imports Qt or launches app code; docs/architecture.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable
from xml.sax.saxutils import escape as xml_escape

from engine.ablation.modes import MODES
from engine.errors import UserError
from engine.scene.layout import VIEWS

FORMATS = ("png", "svg", "graphml", "json", "csv")
IMAGE_FORMATS = ("png", "svg")
DEFAULT_SIZE = (1200, 800)
SIZE_LIMITS = ((320, 240), (8192, 8192))
SCALE_LIMITS = (0.25, 8.0)
MAX_IMAGE_SIDE = 16384
GUI_EXTRA_MESSAGE = "png/svg export needs the gui extra: pip install 'circuit-inspector[gui]'"
NODE_COLUMNS = ("id", "label", "site", "layer", "index", "x", "y", "ablated", "in_circuit", "selected")
EDGE_COLUMNS = ("source", "target", "weight", "ablated", "shown")


# ---------------------------------------------------------------------------------------------
# Output paths and atomic writes


def output_paths(out: Path | str, fmt: str) -> list[Path]:
    """The files an export to ``out`` writes: one, or for CSV ``OUT.nodes.csv`` and ``OUT.edges.csv``."""
    out = Path(out).expanduser()
    if fmt != "csv":
        return [out]
    stem = out.with_suffix("") if out.suffix.lower() == ".csv" else out
    return [stem.with_name(stem.name + ".nodes.csv"), stem.with_name(stem.name + ".edges.csv")]


def check_output(out: Path | str, fmt: str) -> list[Path]:
    """Raise UserError (saying what to do) unless every file of the export can be created."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    paths = output_paths(out, fmt)
    for path in paths:
        folder = path.parent
        if not folder.exists():
            raise UserError(f"cannot write {path}: the folder {folder} does not exist; create it or choose "
                            "another folder")
        if not folder.is_dir():
            raise UserError(f"cannot write {path}: {folder} is a file, not a folder; choose another folder")
        if path.is_dir():
            raise UserError(f"cannot write {path}: that is a folder; give a file name")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UserError(f"cannot write {path}: the folder {folder} is not writable (permission denied); "
                            "choose another folder")
    return paths


def _write_all(items: list[tuple[Path, bytes]]) -> None:
    """Write every (path, data) to a temporary sibling, then rename them all into place."""
    temps: list[str] = []
    path = items[0][0]
    try:
        for path, data in items:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps.append(tmp)
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), 0o644)  # an export is for sharing (mkstemp makes it private)
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for (path, _), tmp in zip(items, temps):
            os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}; choose another folder or file name") from None
    finally:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)


def write_image(data: bytes | str, fmt: str, out: Path | str) -> list[Path]:
    """Write a rendered PNG (bytes) or SVG (text) atomically; returns the path written."""
    if fmt not in IMAGE_FORMATS:
        raise UserError(f"{fmt} is not an image format ({', '.join(IMAGE_FORMATS)})")
    paths = check_output(out, fmt)
    _write_all([(paths[0], data.encode("utf-8") if isinstance(data, str) else bytes(data))])
    return paths


# ---------------------------------------------------------------------------------------------
# The data formats


def write_view(doc: dict[str, Any], fmt: str, out: Path | str) -> list[Path]:
    """Write a view document as ``json``, ``csv`` (two files) or ``graphml``; returns the paths."""
    if fmt not in ("json", "csv", "graphml"):
        raise UserError(f"{fmt} is not a data format (json, csv, graphml)")
    paths = check_output(out, fmt)
    if fmt == "json":
        blobs = [(json.dumps(doc, indent=1) + "\n").encode("utf-8")]
    elif fmt == "csv":
        blobs = [_csv(doc["nodes"], _with_extra(NODE_COLUMNS, doc["nodes"])),
                 _csv(doc["edges"], _with_extra(EDGE_COLUMNS, doc["edges"]))]
    else:
        blobs = [_graphml(doc)]
    _write_all(list(zip(paths, blobs)))
    return paths


def _with_extra(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """The fixed columns, then any other key the rows have (a diff's ``side``, a focus's ``emphasised``)."""
    return columns + tuple(k for k in (rows[0] if rows else {}) if k not in columns)


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def _csv(rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    return buf.getvalue().encode("utf-8")


def graph_attributes(doc: dict[str, Any]) -> dict[str, Any]:
    """The document's scalar fields and metrics (``now_loss``, ``full_accuracy``...), without None."""
    out = {k: v for k, v in doc.items() if isinstance(v, (str, int, float, bool)) and k != "kind"}
    for name, result in (doc.get("metrics") or {}).items():
        for key, value in (result or {}).items():
            out[f"{name}_{key}"] = value
    for name in ("focus", "diff"):  # focus_hops, diff_b, ...
        scalars = {k: v for k, v in (doc.get(name) or {}).items() if isinstance(v, (str, int, float, bool))}
        out.update({f"{name}_{k}": v for k, v in scalars.items()})
    return out


_GRAPHML_TYPES = ((bool, "boolean"), (int, "int"), (float, "double"), (str, "string"))


def _graphml_type(value: Any) -> str:
    return next(name for t, name in _GRAPHML_TYPES if isinstance(value, t))


def _graphml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _xml(repr(value) if isinstance(value, float) else str(value))


def _first_values(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each key of ``rows`` with its first value that is not None (its GraphML type), in key order."""
    out = {k: v for k, v in (rows[0] if rows else {}).items() if v is not None}
    missing = [k for k, v in (rows[0] if rows else {}).items() if v is None]
    for row in rows[1:] if missing else ():
        for k in [k for k in missing if row.get(k) is not None]:
            out[k] = row[k]
            missing.remove(k)
        if not missing:
            break
    return out


def _xml(text: str) -> str:
    return xml_escape(text, {'"': "&quot;"})


def _graphml(doc: dict[str, Any]) -> bytes:
    """GraphML of the document: graph attributes, every node with its fields, every weight edge.
    Written directly (networkx's writer takes seconds for the whole demo model); networkx,
    Gephi and yEd read it."""
    domains = (("graph", "g", [graph_attributes(doc)]), ("node", "n", doc["nodes"]), ("edge", "e", doc["edges"]))
    keys: dict[tuple[str, str], str] = {}
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">']
    for domain, prefix, rows in domains:
        skip = {"id"} if domain == "node" else {"source", "target"} if domain == "edge" else set()
        for name, value in _first_values(rows).items():
            if name not in skip:
                keys[(domain, name)] = f"{prefix}{len([k for k in keys if k[0] == domain])}"
                lines.append(f'<key id="{keys[(domain, name)]}" for="{domain}" attr.name="{_xml(name)}" '
                             f'attr.type="{_graphml_type(value)}"/>')

    def data(domain: str, row: dict[str, Any]) -> str:
        return "".join(f'<data key="{keys[(domain, k)]}">{_graphml_value(v)}</data>'
                       for k, v in row.items() if (domain, k) in keys and v is not None)

    lines.append('<graph edgedefault="directed">' + data("graph", graph_attributes(doc)))
    lines += [f'<node id="{_xml(n["id"])}">{data("node", n)}</node>' for n in doc["nodes"]]
    lines += [f'<edge source="{_xml(e["source"])}" target="{_xml(e["target"])}">{data("edge", e)}</edge>'
              for e in doc["edges"]]
    lines += ["</graph>", "</graphml>"]
    return ("\n".join(lines) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Command-line options (``circuit-engine export`` and ``circuit-inspector export`` share them)


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1200x800, got {text!r}")
    (lo_w, lo_h), (hi_w, hi_h) = SIZE_LIMITS
    w, h = int(match.group(1)), int(match.group(2))
    if not (lo_w <= w <= hi_w and lo_h <= h <= hi_h):
        raise argparse.ArgumentTypeError(f"size must be between {lo_w}x{lo_h} and {hi_w}x{hi_h}, got {text!r}")
    return w, h


def parse_scale(text: str) -> float:
    try:
        scale = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number like 2, got {text!r}") from None
    if not SCALE_LIMITS[0] <= scale <= SCALE_LIMITS[1]:
        raise argparse.ArgumentTypeError(f"scale must be between {SCALE_LIMITS[0]:g} and {SCALE_LIMITS[1]:g}")
    return scale


def parse_ablate(text: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``SITE:IDX,...`` items (nodes) and ``SRC->DST`` items (single weights), comma-separated."""
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    return tuple(t for t in items if "->" not in t), tuple(t for t in items if "->" in t)


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``circuit-engine export`` and of ``circuit-inspector export`` (the same)."""
    p.add_argument("run", help="run folder, or demo / demo-dense")
    p.add_argument("--circuit", help="circuit file, or a task name (that task's circuit); default: the "
                                     "circuit of --task (or of the session's task)")
    p.add_argument("--task", help="built-in task (default: the circuit's task, else the app's default)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, type=Path,
                   help="file to write; csv writes OUT.nodes.csv and OUT.edges.csv")
    p.add_argument("--scale", type=parse_scale, default=1.0,
                   help="png: image pixels per view pixel, e.g. 1, 2 or 4 (default 1)")
    p.add_argument("--size", type=parse_size, default=None, metavar="WxH",
                   help=f"view size in pixels (default {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]})")
    p.add_argument("--ablate", metavar="SITE:IDX,...",
                   help="nodes (blocks.0.mlp.neuron:12) and weights (SRC->DST) to show ablated, comma-separated; "
                        "added to the session's")
    p.add_argument("--mode", choices=MODES, help="ablation (default mean)")
    p.add_argument("--view", choices=VIEWS, help="the circuit or the whole model")
    p.add_argument("--session", type=Path, metavar="S.json",
                   help="a session saved by the app: its view range, ablations, selection, labels, pair")
    p.add_argument("--diff", metavar="B", help="compare the circuit with circuit B of the run (a name of the task's "
                                               "circuits, e.g. zero or formation/step_0001000, or a file): nodes and "
                                               "weights coloured by side (only in A, only in B, both)")
    p.add_argument("--focus", metavar="NODE", help="select NODE and dim all but its --hops neighbourhood")
    p.add_argument("--hops", type=int, metavar="K", help="the focus's radius in hops (default 1, or the session's)")
    p.add_argument("--min-degree", type=int, metavar="N", help="dim nodes with fewer than N weights shown (in + out)")
    p.add_argument("--json", action="store_true", help="print one JSON line with what was written")


def check_image_size(size: tuple[int, int], scale: float) -> None:
    w, h = round(size[0] * scale), round(size[1] * scale)
    if max(w, h) > MAX_IMAGE_SIDE:
        raise UserError(f"a {w}x{h} image is too large (at most {MAX_IMAGE_SIDE} pixels a side); "
                        "lower --scale or --size")
