"""Command line of the multi-process work: ``circuit-engine prune-all`` (alone or under torchrun).

:func:`register` adds the subcommand to the CLI's subparsers. Only rank 0 prints; the other ranks
run their share of the jobs silently. Knows nothing about Qt.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable


def cmd_prune_all(args: argparse.Namespace) -> dict[str, Any] | None:
    from engine.cli.main import _drive, _prune_config
    from engine.train.distributed import launch
    from engine.pruning.prune_all import prune_all
    from engine.train.loop import run_to_end

    tasks = [t.strip() for item in args.tasks or [] for t in item.split(",") if t.strip()] or None
    with launch(args.dist_timeout) as dist:  # under torchrun: the (task, k_coef) jobs are split over ranks
        gen = prune_all(args.run, tasks, _prune_config(args), dist, device=args.device, name=args.name)
        return _drive(gen) if dist.is_main else run_to_end(gen)


def _print_prune_all(r: dict[str, Any]) -> None:
    print(f"{'task':<28} {'status':<11} {'nodes':>6} {'edges':>6} {'loss':>8}   ({r['world_size']} process(es), "
          f"{r['seconds']:.1f}s)")
    for t in r["tasks"]:
        if t["status"] == "ok":
            print(f"{t['task']:<28} {'ok':<11} {t['nodes']:>6} {t['edges']:>6} {t['circuit_loss']:>8.4f}   "
                  f"{t['circuit']}")
        else:
            print(f"{t['task']:<28} {t['status']:<11} {'':>6} {'':>6} {'':>8}   full-model loss {t['full_loss']:.3f}")


def register(subparsers: Any, prune_options: Callable[[argparse.ArgumentParser], None],
             dist_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``prune-all`` (with the CLI's shared pruning and torchrun options)."""
    pa = subparsers.add_parser("prune-all", help="prune several tasks; under torchrun the (task, k_coef) jobs "
                                                 "are split over the processes")
    pa.add_argument("run", help="run folder, or demo / demo-dense")
    pa.add_argument("--tasks", nargs="+", metavar="NAME",
                    help="task names, space- or comma-separated (default: all built-in tasks)")
    pa.add_argument("--name", help="file name of the circuits (default: the ablation mode)")
    pa.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="under torchrun: cuda:LOCAL_RANK")
    prune_options(pa)
    dist_options(pa)
    pa.set_defaults(func=cmd_prune_all, printer=_print_prune_all)
