"""``circuit-engine attention``: where one head looks from the last position of each held-out prompt
(:mod:`engine.mechanism.attention`). Knows nothing about Qt."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_attention(args: argparse.Namespace) -> dict[str, Any]:
    from engine.errors import UserError
    from engine.mechanism.attention import run_attention

    if args.pairs < 1 or args.pairs > 10_000:
        raise UserError(f"--pairs must be in 1..10,000, got {args.pairs}")
    nodes = [n for n in (args.nodes or "").split(",") if n.strip()]
    return run_attention(args.run, args.task, args.layer, args.head, args.pairs, args.circuit, args.baseline,
                         nodes, args.mode, args.task_file)


def _print_attention(r: dict[str, Any], top: int = 3) -> None:
    import numpy as np

    where = f"circuit {r['circuit']} (the rest ablated)" if r["baseline"] == "circuit" else "the full model"
    extra = f", with {', '.join(r['ablated'])} ablated ({r['mode']})" if r["ablated"] else ""
    print(f"layer {r['layer']} head {r['head']} on {r['task']}: attention from the last position, "
          f"{r['prompts_count']} prompts ({r['pairs']} held-out pairs, sides A and B), {where}{extra}")
    for p in r["prompts"]:
        order = np.argsort(-np.asarray(p["weights"]), kind="stable")[:top]
        tops = "  ".join(f"{int(i)}:{p['tokens'][i]!r} {p['weights'][i]:.2f}" for i in order)
        print(f"  pair {p['pair']:>3} {p['side']}  sink {p['sink']:.2f}  {tops}")


def register(sub: Any) -> None:
    """Add ``attention`` (``sub`` from ``ArgumentParser.add_subparsers``)."""
    from engine.ablation.modes import MODES

    at = sub.add_parser("attention", help="where one head attends from each held-out prompt's last position")
    at.add_argument("run", help="run folder or name (e.g. demo)")
    at.add_argument("--task", help="built-in task name")
    at.add_argument("--task-file", help="a task file (JSON) instead of --task")
    at.add_argument("--layer", type=int, required=True)
    at.add_argument("--head", type=int, required=True)
    at.add_argument("--pairs", type=int, default=8, help="held-out pairs; both sides of each (default 8)")
    at.add_argument("--circuit", help="a circuit name or file of this run")
    at.add_argument("--baseline", choices=["full", "circuit"], default="full",
                    help="the full model, or the circuit with the rest ablated (needs --circuit)")
    at.add_argument("--nodes", help="extra nodes to ablate, comma-separated (e.g. blocks.1.attn.k:3)")
    at.add_argument("--mode", choices=list(MODES), default="mean", help="ablation of --nodes (default mean)")
    at.add_argument("--json", action="store_true",
                    help="one JSON object: per prompt its tokens, the weights over them (same length) and the sink's")
    at.set_defaults(func=cmd_attention, printer=_print_attention)
