"""Command line of the sparse-vs-dense comparison and of circuit formation: ``circuit-engine compare``
and ``circuit-engine formation``.

:func:`register` adds both subcommands to the CLI's subparsers (with the CLI's shared pruning
options); the handlers return dicts that the CLI prints, or one JSON line with ``--json``.
Knows nothing about Qt.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from engine.errors import UserError


def cmd_compare(args: argparse.Namespace) -> dict[str, Any]:
    from engine.cli.main import _drive, _prune_config
    from engine.fileio import check_output_file
    from engine.pruning.compare import compare

    if args.csv is not None:
        check_output_file(args.csv, "CSV file (--csv)")  # before any pruning, not after it
    result = _drive(compare(args.sparse_run, args.dense_run, args.tasks, _prune_config(args), csv_path=args.csv,
                            matched=not args.same_steps_only))
    if args.json:
        result = {k: v for k, v in result.items() if k != "curves"}  # the curves are in the CSV
    return result


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _print_compare(r: dict[str, Any]) -> None:
    m = r["matched"]
    matched = m is not None and not m["same_as_final"]
    print(f"{'task':<28} {'sparse edges':>12} {'dense edges':>12} {'ratio':>7}"
          + (f" {'dense@' + str(m['step']):>12} {'ratio':>7}" if matched else ""))
    for t in r["tasks"]:
        line = (f"{t['task']:<28} {_num(t.get('sparse_edges'), ''):>12} {_num(t.get('dense_edges'), ''):>12} "
                f"{_num(t.get('dense_ratio'), '.2f'):>7}")
        if matched:
            line += f" {_num(t.get('dense_matched_edges'), ''):>12} {_num(t.get('dense_matched_ratio'), '.2f'):>7}"
        print(line)
        for key in ("sparse_error", "dense_error", "dense_matched_error"):
            if t.get(key):
                print(f"    {key.replace('_error', '').replace('_', ' ')}: {t[key]}")
    print(f"same steps ({r['sparse_steps']} vs {r['dense_steps']}): geometric mean sparse "
          f"{r['sparse_edges_geomean']:.1f}, dense {r['dense_edges_geomean']:.1f} edges, ratio {r['ratio']:.2f} "
          f"(val loss sparse {_num(r['sparse_val_loss'], '.4f')}, dense {_num(r['dense_val_loss'], '.4f')})")
    if m is not None:
        print(f"matched loss (dense step {m['step']}, val loss {m['val_loss']:.4f} vs sparse "
              f"{m['sparse_val_loss']:.4f}): ratio {_num(m['ratio'], '.2f')}")
    else:
        print(f"matched loss: {r['matched_note']}")
    print(f"loss-vs-edges curves: {r['csv']}")


def cmd_formation(args: argparse.Namespace) -> dict[str, Any]:
    from engine.cli.main import _drive, _prune_config
    from engine.pruning.formation import formation

    if bool(args.task) == bool(args.task_file):
        raise UserError("give exactly one of --task NAME or --task-file FILE")
    return _drive(formation(args.run, args.task, args.task_file, _prune_config(args), steps=args.checkpoints))


def _print_formation(r: dict[str, Any]) -> None:
    print(f"task {r['task']}, target {r['target_loss']}, {r['ablation']} ablation; circuits in {r['folder']}")
    print(f"{'step':>8} {'val loss':>9} {'full loss':>10} {'nodes':>6} {'edges':>6} {'circuit loss':>13}  status")
    for s in r["steps"]:
        print(f"{s['step']:>8} {_num(s['val_loss'], '.4f'):>9} {s['full_loss']:>10.4f} {_num(s['nodes'], ''):>6} "
              f"{_num(s['edges'], ''):>6} {_num(s['circuit_loss'], '.4f'):>13}  {s['status']}")


def register(sub: Any, prune_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``compare`` and ``formation`` (``sub`` from ``ArgumentParser.add_subparsers``)."""
    co = sub.add_parser("compare", help="circuit sizes of a sparse run and its dense twin")
    co.add_argument("sparse_run")
    co.add_argument("dense_run")
    co.add_argument("--tasks", nargs="+", metavar="NAME", help="default: the tasks both models solve")
    co.add_argument("--csv", type=Path, help="where to write the loss-vs-edges curves")
    co.add_argument("--same-steps-only", action="store_true",
                    help="skip the dense checkpoint matched on validation loss")
    prune_options(co)
    co.set_defaults(func=cmd_compare, printer=_print_compare)

    fo = sub.add_parser("formation", help="prune a task at every checkpoint of a run (circuit formation)")
    fo.add_argument("run", help="run folder with checkpoints")
    fo.add_argument("--task", help="built-in task name")
    fo.add_argument("--task-file", type=Path, help="a user task file (JSON)")
    fo.add_argument("--checkpoints", type=int, nargs="+", metavar="STEP", help="only these steps (default: all)")
    prune_options(fo)
    fo.set_defaults(func=cmd_formation, printer=_print_formation)
