"""A view of a circuit without a window: load a run as the window does, apply a session file and
the export options (``--view``, ``--mode``, ``--ablate``), evaluate the ablation, and return the
:class:`engine.scene.snapshot.ViewSnapshot` an export writes. ``circuit-engine export`` writes its
data formats (JSON, CSV, GraphML) from it; ``circuit-inspector export`` draws its pictures from the
same snapshot, so both equal the window's File > Export of the same view. Knows nothing about Qt.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.ablation.modes import circuit_mode_for
from engine.errors import UserError
from engine.scene.bundle import RunCache, SetupSpec, load_bundle
from engine.scene.diff import bundle_partner
from engine.scene.export import DEFAULT_SIZE, IMAGE_FORMATS, parse_ablate
from engine.scene.focus import FocusSettings
from engine.scene.session import Session, SessionError, read_session
from engine.scene.snapshot import ViewSnapshot, build_snapshot


def _circuit_and_task(args: argparse.Namespace, session: Session) -> tuple[str | None, str | None, str | None, bool]:
    """(circuit file, task, task file, whether a circuit must exist) from the options and session."""
    from engine.circuits.circuit import load_circuit

    if args.circuit is None:
        if args.task is not None:
            return None, args.task, None, False
        return session.circuit, session.task, session.task_file, session.circuit is not None
    spec = Path(args.circuit).expanduser()
    if spec.suffix == ".json" or spec.exists():
        circuit = load_circuit(spec)  # reads the file: its task (a missing file is a UserError)
        return str(spec), args.task or circuit.task, circuit.settings.get("task_file"), True
    if args.task and args.task != args.circuit:
        raise UserError(f"--circuit {args.circuit} names a task but --task is {args.task}; give a circuit "
                        "file to show another task's circuit")
    return None, args.circuit, None, True


def _check_ids(bundle, state: Session) -> None:
    graph = bundle.model_graph
    bad = [n for n in (*state.ablated_nodes, *([state.selected] if state.selected else [])) if n not in graph.index]
    if bad:
        raise UserError(f"not a node of this model: {', '.join(bad[:5])} (node ids look like "
                        f"{graph.ids[0]})")
    if state.ablated_edges:
        known = {graph.edge_id(e) for e in range(graph.n_edges)}
        bad = [e for e in state.ablated_edges if e not in known]
        if bad:
            raise UserError(f"not a nonzero weight of this model: {', '.join(bad[:5])} (weights look like "
                            f"{graph.edge_id(0) if graph.n_edges else 'SRC->DST'})")
    if state.mode == "resample" and not bundle.resample:
        raise UserError("resample ablation needs the run's activation store; record one with "
                        f"`circuit-engine record {bundle.run_path}` or use --mode mean")


def headless_snapshot(args: argparse.Namespace) -> ViewSnapshot:
    """Load the run as the window does and build the snapshot the options and session describe."""
    try:
        session = read_session(args.session) if args.session else Session()
    except SessionError as exc:
        raise UserError(str(exc)) from None
    circuit, task, task_file, need_circuit = _circuit_and_task(args, session)
    bundle, ablator = load_bundle(SetupSpec(run=str(args.run), task=task, task_file=task_file, circuit=circuit),
                                  RunCache())
    if need_circuit and bundle.circuit is None:
        raise UserError(f"no circuit for task {bundle.task.name} in {bundle.run_path}; make one with "
                        f"`circuit-engine prune {bundle.run_path} --task {bundle.task.name}`")
    nodes, edges = parse_ablate(args.ablate)
    state = replace(session, view=args.view or session.view, mode=args.mode or session.mode,
                    ablated_nodes=tuple(dict.fromkeys(session.ablated_nodes + nodes)),
                    ablated_edges=tuple(dict.fromkeys(session.ablated_edges + edges)),
                    labels={**bundle.labels, **session.labels})
    state = _focus_options(args, state)
    _check_ids(bundle, state)
    diff = bundle_partner(bundle, state.diff) if state.diff else None
    baseline = state.baseline if bundle.circuit is not None else "full"
    outside = circuit_mode_for(state.mode)  # as the window: zero and resample ablate the rest of the model too
    now = ablator.evaluate(state.ablated_nodes, state.ablated_edges, state.mode, baseline, circuit_mode=outside)
    alone = ablator.evaluate((), (), outside or ablator.circuit_mode, "circuit", circuit_mode=outside) \
        if bundle.circuit is not None else None
    trace = None  # the pair's attributions: every data export carries them, a picture draws them in attribution mode
    if getattr(args, "format", None) not in IMAGE_FORMATS or state.edges == "attribution":
        from engine.mechanism.trace import trace_pair

        pair = max(0, min(state.pair, len(bundle.task_view.pairs) - 1))
        trace = trace_pair(ablator, pair, state.ablated_nodes, state.ablated_edges, state.mode, baseline, outside)
    return build_snapshot(bundle, state, args.size or DEFAULT_SIZE, now, alone, diff=diff, trace=trace)


def _focus_options(args: argparse.Namespace, state: Session) -> Session:
    """``--focus NODE`` (selects it), ``--hops``, ``--min-degree`` and ``--diff`` over the session's."""
    changes: dict[str, Any] = {}
    if getattr(args, "focus", None):
        changes.update(focus=True, selected=args.focus)
    for option, key in (("hops", "focus_hops"), ("min_degree", "min_degree"), ("diff", "diff")):
        if getattr(args, option, None) is not None:
            changes[key] = getattr(args, option)
    try:
        FocusSettings(True, changes.get("focus_hops", state.focus_hops), changes.get("min_degree", state.min_degree))
    except ValueError as exc:
        raise UserError(f"--hops / --min-degree: {exc}") from None
    return replace(state, **changes)


def export_result(snap: ViewSnapshot, args: argparse.Namespace, paths: list[Path]) -> dict[str, Any]:
    """What an export reports (``--json``): the files, the view and, for pictures, their pixel size."""
    png = args.format == "png"
    return {"format": args.format, "paths": [str(p) for p in paths], "view": snap.view, "task": snap.task,
            "circuit": snap.circuit, "nodes": snap.graph.n_nodes, "edges": snap.graph.n_edges,
            "scale": args.scale if png else 1.0,
            "width": round(snap.size[0] * args.scale) if png else snap.size[0],
            "height": round(snap.size[1] * args.scale) if png else snap.size[1]}


def describe_export(result: dict[str, Any]) -> str:
    """The one line an export prints without ``--json``."""
    size = f" ({result['width']}x{result['height']} px)" if result["format"] in IMAGE_FORMATS else ""
    return (f"wrote {', '.join(result['paths'])}{size}: {result['nodes']} nodes, {result['edges']} weights "
            f"({result['view']} view of {result['task']})")
