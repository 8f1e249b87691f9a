"""``circuit-engine diff RUN [--task T] A B [--json]``: two circuits of one run compared.

A and B are circuit names of the task (``mean``, ``zero``, ``formation/step_0001000`` or just
``step_0001000``) or circuit files. Prints the counts and the node and weight lists only in A, only in
B and in both (:func:`engine.scene.diff.run_diff`); ``--json`` prints them as one JSON object. The
same diff is drawn by the window (Circuits > Compare with circuit…) and by ``export --diff B``.
Knows nothing about Qt.
"""

from __future__ import annotations

import argparse
from typing import Any

LISTED = 40  # ids printed per list without --json


def cmd_diff(args: argparse.Namespace) -> dict[str, Any]:
    from engine.scene.diff import run_diff

    return run_diff(args.run, args.task, args.a, args.b)


def _print_list(title: str, items: list[str], limit: int) -> None:
    more = f" (and {len(items) - limit} more; --json lists all)" if len(items) > limit else ""
    print(f"  {title} ({len(items)}){':' if items else ''}")
    for item in items[:limit]:
        print(f"    {item}")
    if more:
        print(f"   {more}")


def _print_diff(r: dict[str, Any]) -> None:
    a, b = r["a"], r["b"]
    print(f"task {r['task']}: A = {a['name']} ({a['nodes']} nodes, {a['weights']} weights, {a['path']})")
    pad = " " * len(f"task {r['task']}:")
    print(f"{pad} B = {b['name']} ({b['nodes']} nodes, {b['weights']} weights, {b['path']})")
    print(r["summary"])
    for what, key in (("nodes", "nodes"), ("weights", "weights")):
        for side, title in (("a", f"{what} only in {a['name']}"), ("b", f"{what} only in {b['name']}"),
                            ("both", f"{what} in both")):
            _print_list(title, r[key][side], LISTED)


def register(sub: Any) -> None:
    """Add ``diff`` (``sub`` from ``ArgumentParser.add_subparsers``)."""
    d = sub.add_parser("diff", help="nodes and weights only in circuit A, only in B and in both (one run)")
    d.add_argument("run", help="run folder, or demo / demo-dense")
    d.add_argument("a", help="circuit A: a name of the task's circuits (mean, zero, formation/step_0001000) or a file")
    d.add_argument("b", help="circuit B: as A")
    d.add_argument("--task", help="the task whose circuits A and B name (not needed for files)")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_diff, printer=_print_diff)
