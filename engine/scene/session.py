"""Session files: what is on screen (run, task, circuit, view, mode, ablations, labels, view range,
selection) as JSON, so that reloading one restores the identical view.

File > Save session (Ctrl+S), File > Open session (Ctrl+O), ``circuit-inspector --session S.json``,
``--screenshot out.png --session S.json`` and ``circuit-engine export RUN --session S.json`` use them:

    {"kind": "session", "schema_version": 2, "run": "/path/to/run", "task": "single_double_quote",
     "task_file": null, "circuit": "circuits/single_double_quote/mean.json",
     "view": "circuit", "mode": "mean", "baseline": "circuit",
     "ablated_nodes": ["blocks.1.mlp.neuron:212"], "ablated_edges": ["blocks.0.mlp.read:3->blocks.0.mlp.neuron:7"],
     "labels": {"blocks.1.mlp.neuron:212": "quote type"}, "selected": "blocks.1.mlp.neuron:212",
     "pair": 0, "threshold": 0.0, "view_range": [-20.5, 20.5, -0.9, 14.3],
     "focus": true, "focus_hops": 1, "min_degree": 0, "diff": "circuits/single_double_quote/zero.json",
     "overlay": null, "edges": "attribution", "side": "A-B"}

``run`` is a folder or ``demo`` / ``demo-dense`` (what the window writes for the bundled runs); a
relative ``circuit`` is looked up in the run's folder, then its per-user derived folder, then the
current folder (the window writes circuits inside the run that way, others as absolute paths).
Every key but ``kind`` is optional (version 1 files, without ``circuit``, ``labels`` and
``view_range``, still load); unknown keys are errors, so a typo does not silently do nothing.
``read_session(path, drop_invalid=True)`` (the window) leaves a value it cannot use at its default
and lists it in ``Session.dropped`` instead, so that the rest of the view still comes back and the
window says what was left out. ``view_range`` is [x0, x1, y0, y1] in layout units (engine/scene/layout.py); without it the view fits
the graph. ``labels`` are merged into the run's labels when the session loads. ``focus`` dims all but
the selected node's ``focus_hops``-hop neighbourhood, ``min_degree`` all nodes with fewer shown weights,
and ``diff`` names the circuit the view compares with (the circuit file, as ``circuit``; see
engine/scene/focus.py). ``overlay`` ``"effects"`` colours the nodes by their effect on the task
(the app ranks them when the overlay is on; null: no overlay). ``edges`` ``"attribution"`` colours
edges and nodes by their attribution on the selected pair, on ``side`` A, B or A-B
(engine/scene/attribution.py; ``"weight"``: by weight). Knows nothing about Qt or models.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.ablation.modes import BASELINES, MODES
from engine.errors import UserError
from engine.fileio import read_json
from engine.scene.focus import MAX_DEGREE, MAX_HOPS
from engine.scene.attribution import SIDES
from engine.scene.layout import VIEWS

EDGE_MODES = ("weight", "attribution")  # what a view's edges show (AppState.edge_mode)

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
OVERLAYS = ("effects",)  # colour overlays a view can ask for: node effects (the app ranks them)


#: Largest coordinate a view range may have (layout units are tens to thousands).
MAX_VIEW_COORD = 1e9


class SessionError(UserError, ValueError):
    """A session file that cannot be used; the message says why."""


@dataclass(frozen=True)
class Session:
    run: str | None = None
    task: str | None = None
    task_file: str | None = None
    circuit: str | None = None
    view: str = "circuit"
    mode: str = "mean"
    baseline: str = "circuit"
    ablated_nodes: tuple[str, ...] = ()
    ablated_edges: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    selected: str | None = None
    pair: int = 0
    threshold: float = 0.0
    view_range: tuple[float, float, float, float] | None = None
    focus: bool = False  # dim all but the selected node's neighbourhood
    focus_hops: int = 1  # its radius
    min_degree: int = 0  # dim nodes with fewer shown weights (0: off)
    diff: str | None = None  # the circuit compared with (a file, as ``circuit``)
    overlay: str | None = None  # a colour overlay on the nodes: "effects" (node effects) or None
    edges: str = "weight"  # what edges and node colours show: "weight" or "attribution" on the pair
    side: str = "A"  # attribution: on prompt A, B or A-B
    source: str | None = field(default=None, compare=False)  # the file it was read from (not saved)
    dropped: tuple[str, ...] = field(default=(), compare=False)  # what reading left out (not saved)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("source")
        d.pop("dropped")
        d["ablated_nodes"] = list(self.ablated_nodes)
        d["ablated_edges"] = list(self.ablated_edges)
        d["labels"] = dict(sorted(self.labels.items()))
        d["view_range"] = None if self.view_range is None else list(self.view_range)
        return {"kind": "session", "schema_version": SCHEMA_VERSION, **d}


_KNOWN = set(Session.__dataclass_fields__) - {"source", "dropped"}


def _opt_str(value) -> str | None:
    return None if value is None else str(value)


def _view_range(value) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 4:
        raise ValueError("must be a list [x0, x1, y0, y1]")
    x0, x1, y0, y1 = (float(v) for v in value)
    if not all(abs(v) <= MAX_VIEW_COORD for v in (x0, x1, y0, y1)) or x1 <= x0 or y1 <= y0:
        raise ValueError(f"must be numbers within +-{MAX_VIEW_COORD:g} with x0 < x1 and y0 < y1")
    return x0, x1, y0, y1


def _strings(value) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("must be a list of strings")
    return tuple(str(v) for v in value)


def _pair(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 0:
        raise ValueError("must be a whole number >= 0")
    return int(value)


def _threshold(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("must be a finite number")
    return float(value)


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _whole(hi: int):
    def parse(value) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
                or not 0 <= value <= hi:
            raise ValueError(f"must be a whole number from 0 to {hi}")
        return int(value)
    return parse


def _labels(value) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("must be an object {node id: label}")
    return {str(k): str(v) for k, v in value.items()}


def _choice(allowed: tuple[str, ...]):
    def parse(value) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value
    return parse


def _opt_choice(allowed: tuple[str, ...]):
    choice = _choice(allowed)
    return lambda value: None if value is None else choice(value)


#: How each key is read (a parser raises ValueError with what the value must be) and its default.
_FIELDS = {
    "run": (_opt_str, None), "task": (_opt_str, None), "task_file": (_opt_str, None), "circuit": (_opt_str, None),
    "view": (_choice(VIEWS), "circuit"), "mode": (_choice(MODES), "mean"), "baseline": (_choice(BASELINES), "circuit"),
    "ablated_nodes": (_strings, ()), "ablated_edges": (_strings, ()), "labels": (_labels, {}),
    "selected": (_opt_str, None), "pair": (_pair, 0), "threshold": (_threshold, 0.0), "view_range": (_view_range, None),
    "focus": (_flag, False), "focus_hops": (_whole(MAX_HOPS), 1), "min_degree": (_whole(MAX_DEGREE), 0),
    "diff": (_opt_str, None), "edges": (_choice(EDGE_MODES), "weight"), "side": (_choice(SIDES), "A"),
    "overlay": (_opt_choice(OVERLAYS), None),
}


def brief(value, limit: int = 60) -> str:
    """``value`` as JSON-ish text of at most ``limit`` characters (for messages)."""
    text = repr(value) if isinstance(value, float) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _read_fields(data: dict, path: Path, dropped: list[str] | None) -> dict:
    """The Session fields of ``data``. A bad value is a SessionError, or with ``dropped`` a list, left
    at its default and described there (as is an unknown key)."""
    unknown = sorted(set(data) - _KNOWN - {"kind", "schema_version"})
    if unknown and dropped is None:
        raise SessionError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KNOWN))}")
    if unknown:
        dropped.append(f"the unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    fields = {}
    for key, (parse, default) in _FIELDS.items():
        if key not in data:
            fields[key] = dict(default) if isinstance(default, dict) else default
            continue
        try:
            fields[key] = parse(data[key])
        except (TypeError, ValueError, OverflowError) as exc:
            if dropped is None:
                raise SessionError(f"{path}: bad value ({key} {exc}, not {brief(data[key])})") from None
            dropped.append(f"{key} {brief(data[key])} (it {exc})")
            fields[key] = dict(default) if isinstance(default, dict) else default
    return fields


def read_session(path: Path | str, drop_invalid: bool = False) -> Session:
    """Read a session file; any problem is a SessionError. ``drop_invalid`` (the window): a value that
    cannot be used (``pair`` -3, ``threshold`` NaN, ``view_range`` out of bounds, an unknown key...) is
    left at its default and described in :attr:`Session.dropped` instead, so the rest still applies; a
    file that is not a readable session is an error either way."""
    path = Path(path).expanduser()
    try:
        data = read_json(path, what="session file")
    except UserError as exc:
        raise SessionError(str(exc)) from None
    if not isinstance(data, dict) or data.get("kind") != "session":
        raise SessionError(f"{path} is not a session file (expected a JSON object with \"kind\": \"session\")")
    if data.get("schema_version", SCHEMA_VERSION) not in READABLE_VERSIONS:
        raise SessionError(f"{path}: session schema_version {data.get('schema_version')!r} is not supported "
                           f"(this version reads {', '.join(map(str, READABLE_VERSIONS))})")
    dropped: list[str] | None = [] if drop_invalid else None
    fields = _read_fields(data, path, dropped)
    return Session(**fields, source=str(path), dropped=tuple(dropped or ()))


def write_session(path: Path | str, session: Session) -> Path:
    """Write atomically (temporary file + rename)."""
    path = Path(path).expanduser()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # like open(): mkstemp's 0600 would keep colleagues out
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(session.to_dict(), fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
