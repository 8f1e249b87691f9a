"""Command line of node effects: ``circuit-engine rank``.

With a circuit (``--circuit``, else the task's circuit in the run): every circuit node ablated alone on
top of the circuit alone, exactly, with the live Ablator, ranked by the change in task loss. Without
one (or ``--whole-model``): an attribution-patching estimate for every node of the full model, the top
50 by |estimate| checked exactly, and the estimate's Spearman rank correlation with the exact changes.
:func:`register` adds the subcommand; the handler returns a dict that the CLI prints (a table of the
top ``--top`` rows), or one JSON line with ``--json`` (every row). Knows nothing about Qt.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.ablation.modes import PRUNE_MODES
from engine.errors import UserError


def cmd_rank(args: argparse.Namespace) -> dict[str, Any]:
    from engine.mechanism.rank import rank_nodes

    if bool(args.task) == bool(args.task_file):
        raise UserError("give exactly one of --task NAME or --task-file FILE")
    if args.top < 1:
        raise UserError(f"--top must be at least 1 (got {args.top})")
    result = rank_nodes(args.run, args.task, args.task_file, circuit=args.circuit, mode=args.mode,
                        n_pairs=args.pairs, whole_model=args.whole_model)
    result["top"] = args.top
    return result


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _header(r: dict[str, Any]) -> str:
    seqs = f"{r['pairs']} held-out pairs ({r['n_sequences']} sequences)"
    if r["kind"] == "exact":
        return (f"task {r['task']}: {r['n_nodes']} circuit nodes ablated alone ({r['mode']} ablation) on top of the "
                f"circuit {r['baseline']} alone (rest of the model: {r['circuit_mode']} ablation), {seqs}; "
                f"circuit alone: loss {r['loss_baseline']:.4f}, accuracy {100 * r['accuracy_baseline']:.1f}%")
    return (f"task {r['task']}: attribution-patching estimate of the change in task loss for {r['n_nodes']} nodes "
            f"of the full model ({r['mode']} ablation), {seqs}; full model: loss {r['loss_baseline']:.4f}, "
            f"accuracy {100 * r['accuracy_baseline']:.1f}%")


def _print_rank(r: dict[str, Any]) -> None:
    print(_header(r))
    exact = r["kind"] == "exact"
    rows = r["rows"][: r.get("top", 20)]
    est = "" if exact else f" {'estimate':>10}"
    print(f"{'rank':>4}  {'node':<26}{est} {'d loss':>9} {'d acc pp':>9} {'mean|d ld|':>11}  note")
    for i, row in enumerate(rows, 1):
        note = "no effect" if row.get("no_effect") else ("" if exact or "delta_loss" in row else "not checked")
        est = "" if exact else f" {row['estimate']:>+10.4f}"
        print(f"{i:>4}  {row['node']:<26}{est} {_num(row.get('delta_loss'), '+9.4f'):>9} "
              f"{_num(row.get('delta_accuracy'), '+9.1f'):>9} "
              f"{_num(row.get('mean_abs_dlogit_diff'), '11.4f'):>11}  {note}")
    t = r["timing_s"]
    if exact:
        print(f"{r['n_nodes']} nodes, sorted by |d loss| (exact, vs the circuit alone; {r['mode']} ablation, "
              f"{r['pairs']} pairs): {r['n_no_effect']} with no effect (no logit difference moved by 1e-7); "
              f"scan {t['exact']:.2f} s")
        return
    rho = r[f"spearman_top{r['n_checked']}"]
    print(f"{r['n_nodes']} nodes, sorted by |estimate| (vs the full model; {r['mode']} ablation, {r['pairs']} pairs); "
          f"top {r['n_checked']} checked exactly: {r['n_no_effect_checked']} with no effect, Spearman rank "
          f"correlation of estimate and exact d loss {_num(rho, '.3f')}; "
          f"{r['n_zero_estimate']} nodes with an estimate of exactly 0; "
          f"estimate {t['estimate']:.2f} s, exact check {t['exact_check']:.2f} s")


def register(sub: Any) -> None:
    """Add ``rank`` (``sub`` from ``ArgumentParser.add_subparsers``)."""
    rk = sub.add_parser("rank", help="nodes ranked by their effect on a task (exact for a circuit, else estimated)")
    rk.add_argument("run", help="run folder, or demo / demo-dense")
    rk.add_argument("--task", help="built-in task name")
    rk.add_argument("--task-file", type=Path, help="a user task file (JSON)")
    rk.add_argument("--circuit", help="circuit file or task name (default: the task's circuit in the run)")
    rk.add_argument("--whole-model", action="store_true",
                    help="estimate every node of the full model, even when the task has a circuit")
    rk.add_argument("--mode", choices=list(PRUNE_MODES), default="mean")
    rk.add_argument("--pairs", type=int, default=64, help="held-out pairs (default 64)")
    rk.add_argument("--top", type=int, default=20, help="rows printed (default 20; --json has every row)")
    rk.add_argument("--json", action="store_true")
    rk.set_defaults(func=cmd_rank, printer=_print_rank)
