"""``circuit-engine attention``: where one head looks from the last position of each held-out prompt
(:mod:`engine.mechanism.attention`); ``circuit-engine trace``: one pair at every position, with node
effects and weight attributions (:mod:`engine.mechanism.trace`, :mod:`engine.scene.attribution`).
Knows nothing about Qt."""

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


# ---------------------------------------------------------------------------------------------
# circuit-engine trace: one pair at every position, node effects and weight attributions


def cmd_trace(args: argparse.Namespace) -> dict[str, Any]:
    from engine.errors import UserError
    from engine.scene.attribution import run_trace

    if args.pairs < 1 or args.pairs > 10_000:
        raise UserError(f"--pairs must be in 1..10,000, got {args.pairs}")
    if not 1 <= args.top <= 100_000:
        raise UserError(f"--top must be in 1..100,000, got {args.top}")
    ablate = [n for n in (args.ablate or "").split(",") if n.strip()]
    heads = []
    for text in args.pattern or []:
        layer, sep, head = text.partition(":")
        if not sep or not layer.strip().isdigit() or not head.strip().isdigit():
            raise UserError(f"--pattern {text!r}: write LAYER:HEAD, e.g. --pattern 1:6")
        heads.append((int(layer), int(head)))
    return run_trace(args.run, args.task, args.pair, args.pairs, args.circuit, args.baseline, ablate, args.mode,
                     args.node or [], args.top, args.task_file, heads)


def _print_trace(r: dict[str, Any]) -> None:
    where = f"circuit {r['circuit']} (the rest ablated)" if r["baseline"] == "circuit" else "the full model"
    extra = f", with {', '.join(r['ablated'])} ablated ({r['mode']})" if r["ablated"] else ""
    ld = r["logit_diff"]
    print(f"pair {r['pair']} of {r['pairs']} held-out pairs of {r['task']}, {where}{extra}: "
          f"logit diff (target - foil) A {ld['A']:+.3f}, B {ld['B']:+.3f}")
    for side in "AB":
        print(f"  {side}: {''.join(r['tokens'][side])!r}")
    for node, sides in r["nodes"].items():
        print(f"{node} at every position:")
        for side in "AB":
            vals = "  ".join(f"{t!r}:{v:+.3f}" for t, v in zip(r["tokens"][side], sides[side]) if v)
            print(f"  {side}  {vals or '(0 at every position)'}")
    print(f"node effects on the logit diff (attribution-patching estimate of ablating each alone, "
          f"{r['mode']}; largest {len(r['effects_estimated'])}):")
    for e in r["effects_estimated"]:
        print(f"  {e['node']:<28} A {e['A']:+.3f}  B {e['B']:+.3f}")
    for name, sides in r["patterns"].items():
        for side in "AB":
            toks = r["tokens"][side]
            print(f"{name} on {side}: for each query position, the key it attends to most")
            for q, row in enumerate(sides[side]):
                k = max(range(len(row)), key=row.__getitem__)
                print(f"  {q:>3} {toks[q]!r:>8} -> {k:>3} {toks[k]!r:>8} {row[k]:.2f}")
    if r["edges"]:
        print(f"circuit weights by attribution on this pair (weight x source signal; largest |A - B| first, "
              f"{len(r['edges'])} weights; --json has all):")
        for e in r["edges"][:10]:
            print(f"  {e['src']} -> {e['dst']}  w {e['weight']:+.3f}  A {e['A']:+.3f}  B {e['B']:+.3f}")


def register_trace(sub: Any) -> None:
    """Add ``trace`` (``sub`` from ``ArgumentParser.add_subparsers``)."""
    from engine.ablation.modes import MODES

    tr = sub.add_parser("trace", help="one held-out pair at every position: node values, node effects and "
                                      "weight attributions")
    tr.add_argument("run", help="run folder or name (e.g. demo)")
    tr.add_argument("--task", help="built-in task name")
    tr.add_argument("--task-file", help="a task file (JSON) instead of --task")
    tr.add_argument("--pair", type=int, default=0, help="which held-out pair (default 0)")
    tr.add_argument("--pairs", type=int, default=24, help="held-out pairs drawn, as in the app (default 24)")
    tr.add_argument("--circuit", help="a circuit name or file of this run (its weights get attributions)")
    tr.add_argument("--baseline", choices=["full", "circuit"], default="full",
                    help="the full model, or the circuit with the rest ablated (needs --circuit)")
    tr.add_argument("--ablate", help="nodes to ablate, comma-separated")
    tr.add_argument("--mode", choices=list(MODES), default="mean",
                    help="ablation of --ablate and of the estimated effects (default mean)")
    tr.add_argument("--node", action="append", help="a node to show at every position (repeatable)")
    tr.add_argument("--top", type=int, default=10, help="how many node effects to list (default 10)")
    tr.add_argument("--pattern", action="append", metavar="LAYER:HEAD",
                    help="a head's full attention pattern on A and B, every query position (repeatable)")
    tr.add_argument("--json", action="store_true", help="one JSON object")
    tr.set_defaults(func=cmd_trace, printer=_print_trace)
