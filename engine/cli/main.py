"""``circuit-engine``: the headless command line. The only place in the engine that prints.

Every command that takes ``--json`` prints one JSON object as its last stdout line. Progress goes
to stderr. A user error prints one ``error: ...`` line and exits 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from engine.ablation.modes import MODES, PRUNE_MODES, circuit_mode_for
from engine.allocator import keep_freed_memory
from engine.errors import OneLineArgumentParser, UserError


_Parser = OneLineArgumentParser  # one `error:` line and exit 2, no abbreviated options


def _fmt_event(ev) -> str:
    parts = [f"step {ev.step:>6}/{ev.total_steps}"]
    if ev.train_loss is not None:
        parts.append(f"loss {ev.train_loss:.3f}")
    if ev.val_loss is not None:
        parts.append(f"val {ev.val_loss:.3f}")
    if ev.lr:
        parts.append(f"lr {ev.lr:.2e}")
    dens = dict(ev.density)
    if "matrices" in dens:
        parts.append(f"density {dens['matrices']:.4f}")
    if ev.tokens_per_s:
        parts.append(f"{ev.tokens_per_s / 1000:.1f}k tok/s")
    if ev.eta_s and math.isfinite(ev.eta_s):
        parts.append(f"eta {ev.eta_s:.0f}s")
    return "  ".join(parts)


def cmd_train(args: argparse.Namespace) -> dict[str, Any] | None:
    from engine.config import make_config
    from engine.train.distributed import launch
    from engine.train.loop import train

    out = Path(args.out)
    cfg = None
    if not args.resume or args.preset or args.dense or args.corpus or args.tokenizer or args.config or args.set:
        cfg = make_config(args.preset or "tiny", dense=args.dense, steps=None if args.resume else args.steps,
                          corpus=args.corpus, tokenizer=args.tokenizer, device=None, config_file=args.config,
                          overrides=args.set)
    with launch(args.dist_timeout, args.mask_check_every) as dist:  # torchrun: join the group
        gen = train(out, cfg, resume=args.resume, device=args.device, dist=dist,
                    steps=args.steps if args.resume else None)
        last_print = 0.0
        result = None
        try:
            while True:
                try:
                    ev = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                now = time.monotonic()
                if not dist.is_main or ev.kind == "busy":
                    continue  # only rank 0 prints; "busy" is a heartbeat that lets the app cancel inside long phases
                if ev.kind in ("setup", "checkpoint", "done"):
                    _err(ev.message if ev.kind != "checkpoint" else f"step {ev.step:>6}/{ev.total_steps}  {ev.message}")
                elif ev.kind == "eval" or now - last_print >= args.print_every:
                    last_print = now
                    _err(_fmt_event(ev))
        except KeyboardInterrupt:
            gen.close()  # writes a checkpoint of the last completed step
            if dist.is_main:
                _err(f"cancelled; resume with: circuit-engine train --resume --out {out}")
            raise SystemExit(130)
        if not dist.is_main:
            return None
    return {"run": str(out), "steps_done": result.steps_done, "total_steps": result.total_steps,
            "val_loss": result.final_val_loss, "corpus_files": result.corpus.n_files if result.corpus else None,
            "corpus_skipped": result.corpus.n_skipped if result.corpus else None}


def _drive(gen):
    """Run an engine generator to its return value, printing its progress to stderr."""
    from engine.train.loop import run_to_end

    last = [0.0]

    def show(ev) -> None:
        msg = getattr(ev, "message", "")
        now = time.monotonic()
        if msg:
            _err(msg)
        elif getattr(ev, "kind", "") == "step" and now - last[0] > 2.0:
            last[0] = now
            _err(f"  k_coef {ev.k_coef:g}: step {ev.step}/{ev.total}  task loss {ev.loss:.4f}  active nodes {ev.n_active}")

    return run_to_end(gen, show)


def cmd_tasks(args: argparse.Namespace) -> dict[str, Any]:
    from engine.tasks.lookup import list_tasks

    out = []
    for t in list_tasks():
        ex = t.example()
        out.append({"name": t.name, "description": t.description,
                    "example": {"prompt_a": ex.prompt_a, "target_a": ex.target_a,
                                "prompt_b": ex.prompt_b, "target_b": ex.target_b}})
    return {"tasks": out}


def _print_tasks(result: dict[str, Any]) -> None:
    for t in result["tasks"]:
        ex = t["example"]
        print(f"{t['name']}: {t['description']}")
        print(f"    A: {ex['prompt_a'][-50:]!r} -> {ex['target_a']!r}")
        print(f"    B: {ex['prompt_b'][-50:]!r} -> {ex['target_b']!r}")


def cmd_eval_tasks(args: argparse.Namespace) -> dict[str, Any]:
    from engine.tasks.evaluate import eval_tasks

    rows = eval_tasks(args.run, args.tasks, args.task_file, n_pairs=args.pairs)
    return {"run": args.run, "pairs": args.pairs, "tasks": rows}


def _print_eval(result: dict[str, Any]) -> None:
    print(f"{'task':<28} {'loss':>8} {'accuracy':>9}   ({result['pairs']} held-out pairs per task)")
    for r in result["tasks"]:
        print(f"{r['task']:<28} {r['loss']:>8.4f} {r['accuracy']:>9.3f}")


def _prune_config(args: argparse.Namespace):
    from engine.pruning.prune import PruneConfig

    if not (math.isfinite(args.target_loss) and args.target_loss > 0):
        raise UserError(f"--target-loss must be a finite number above 0, got {args.target_loss}")
    if not all(math.isfinite(k) for k in args.k_coefs or []):
        raise UserError(f"--k-coefs must be finite numbers, got {' '.join(map(str, args.k_coefs))}")
    kw: dict[str, Any] = {"target_loss": args.target_loss, "ablation": args.ablation,
                          "frozen_norm": args.frozen_norm, "calibrate": args.calibrate}
    if args.steps:
        kw["steps"] = args.steps
    if args.k_coefs:
        kw["k_coefs"] = tuple(args.k_coefs)
    if args.val_pairs:
        kw["val_pairs"] = args.val_pairs
    return PruneConfig(**kw).validate()


def cmd_prune(args: argparse.Namespace) -> dict[str, Any]:
    from engine.fileio import check_name
    from engine.pruning.job import prune_run

    if bool(args.task) == bool(args.task_file):
        raise UserError("give exactly one of --task NAME or --task-file FILE")
    if args.name is not None:
        check_name(args.name, "circuit name (--name)")
    circuit, path = _drive(prune_run(args.run, args.task, args.task_file, _prune_config(args), name=args.name))
    m = circuit.metrics
    out = {"task": circuit.task, "circuit": str(path), "nodes": circuit.n_nodes, "edges": circuit.n_edges,
           "full_loss": m["full_loss"], "circuit_loss": m["circuit_loss"], "target_loss": m["target_loss"],
           "k_coef": m["k_coef"], "seconds": m["seconds"], "nodes_per_site": circuit.nodes_per_site()}
    if "calibrated_loss" in m:
        out["calibrated_loss"] = m["calibrated_loss"]
    if "faithfulness" in m:
        f = m["faithfulness"]
        out.update({"sufficiency_loss": f["mean"]["sufficiency_loss"], "necessity_loss": f["mean"]["necessity_loss"],
                    "random_loss": f["mean"]["random_loss_mean"], "faithfulness": f})
    v = m.get("verdict") or {}
    out.update({"verdict": v.get("verdict"), "warnings": v.get("warnings", []), "reasons": v.get("reasons", []),
                "n_pairs": m.get("n_pairs"), "no_ops_dropped": m.get("no_ops_dropped"),
                "convergence": m.get("convergence")})
    return out


def _print_prune(r: dict[str, Any]) -> None:
    pairs = f" on {r['n_pairs']} held-out pairs" if r.get("n_pairs") else ""
    print(f"{r['task']}: {r['nodes']} nodes, {r['edges']} edges, held-out loss {r['circuit_loss']:.4f}{pairs} "
          f"(full model {r['full_loss']:.4f}, target {r['target_loss']}) -> {r['circuit']}")
    dropped = r.get("no_ops_dropped")
    if dropped:
        print(f"dropped {len(dropped)} node(s) whose ablation changed no held-out logit: {', '.join(dropped[:6])}"
              + (" ..." if len(dropped) > 6 else ""))
    print(f"verdict: {r['verdict']}")
    for reason in r.get("reasons", []):
        print(f"  - {reason}")


def cmd_faithfulness(args: argparse.Namespace) -> dict[str, Any]:
    from engine.pruning.faithfulness import faithfulness_report

    return faithfulness_report(args.run, args.circuit, n_pairs=args.pairs)


def _print_faith(r: dict[str, Any]) -> None:
    print(f"circuit {r['circuit']}  task {r['task']}: {r['nodes']} nodes, {r['edges']} edges; "
          f"task loss on {r['mean'].get('n_pairs', '?')} held-out pairs")
    print(f"{'ablation':<8} {'full':>8} {'sufficiency':>12} {'necessity':>10} {'random same-size sets':>24}")
    for mode in PRUNE_MODES:
        f = r[mode]
        rand = ("unavailable" if f["random_loss_mean"] is None else
                f"{f['random_loss_mean']:.4f}±{f['random_loss_std']:.3f} ({f['n_random']} sets)")
        print(f"{mode:<8} {f['full_loss']:>8.4f} {f['sufficiency_loss']:>12.4f} {f['necessity_loss']:>10.4f} {rand:>24}")
    if r.get("verdict"):
        print(f"verdict: {r['verdict']['verdict']}")
        for reason in r["verdict"]["reasons"]:
            print(f"  - {reason}")


def cmd_ablate(args: argparse.Namespace) -> dict[str, Any]:
    from engine.ablation.setup import make_ablator

    if bool(args.task) == bool(args.task_file):
        raise UserError("give exactly one of --task NAME or --task-file FILE")
    nodes = [n for n in (args.nodes or "").split(",") if n.strip()]
    edges = [e for e in (args.edges or "").split(",") if e.strip()]
    if not nodes and not edges:
        raise UserError("nothing to ablate: pass --nodes SITE:INDEX,... and/or --edges SRC->DST,...")
    ab = make_ablator(args.run, args.task, args.task_file, args.circuit, n_pairs=args.pairs)
    baseline = "circuit" if args.circuit else "full"
    outside = circuit_mode_for(args.mode)  # as the app: zero and resample ablate the rest of the model too
    full = ab.evaluate()
    base = ab.evaluate(baseline=baseline, circuit_mode=outside)
    now = ab.evaluate(nodes, edges, mode=args.mode, baseline=baseline, circuit_mode=outside)
    return {"task": args.task or str(args.task_file), "mode": args.mode, "baseline": baseline,
            "circuit_mode": base.circuit_mode,
            "nodes": nodes, "edges": edges, "full_loss": full.loss, "full_accuracy": full.accuracy,
            "baseline_loss": base.loss, "baseline_accuracy": base.accuracy, "loss": now.loss,
            "accuracy": now.accuracy, "delta_loss": now.loss - base.loss, "elapsed_ms": round(now.elapsed_ms, 2),
            "n_sequences": len(now.logit_diff)}


def _print_ablate(r: dict[str, Any]) -> None:
    print(f"task {r['task']}  ({r['n_sequences']} held-out sequences, {r['mode']} ablation)")
    print(f"  {'full model':<24} loss {r['full_loss']:.4f}  accuracy {r['full_accuracy']:.3f}")
    if r["baseline"] == "circuit":  # the rest of the model ablated as the app does it (circuit_mode_for)
        alone = f"circuit alone ({r['circuit_mode']})"
        print(f"  {alone:<24} loss {r['baseline_loss']:.4f}  accuracy {r['baseline_accuracy']:.3f}")
    print(f"  {'with ablation':<24} loss {r['loss']:.4f}  accuracy {r['accuracy']:.3f}  "
          f"(delta {r['delta_loss']:+.4f}, {r['elapsed_ms']:.1f} ms)")


def cmd_info(args: argparse.Namespace) -> dict[str, Any]:
    from engine.runs import run_info

    return run_info(Path(args.run))


def _print_info(info: dict[str, Any]) -> None:
    m = info["config"]["model"]
    imported = info.get("source") is not None  # trained elsewhere: no training targets or log here
    print(f"run        {info['run']}  ({info['preset']}, {'sparse' if info['sparse'] else 'dense'})")
    print(f"model      {m['n_layer']} layers, d_model {m['d_model']}, d_mlp {m['d_mlp']}, ctx {m['n_ctx']}, "
          f"vocab {m['vocab_size']} ({info['tokenizer'] or 'no tokenizer: token ids only'})")
    print(f"params     {info['parameters']:,} ({info['nonzero_parameters']:,} nonzero)")
    for kind, d in info["density"].items():
        target = "" if imported else f" (target {d['target']:.4f})"
        print(f"  {kind:<10} {d['nonzero']:>9,} / {d['total']:<9,} density {d['density']:.4f}{target}")
    target = "" if imported else f" (target {info['target_density']:.4f})"
    print(f"matrices   density {info['matrix_density']:.4f}{target}")
    if imported:
        print(f"source     imported from {info['source']}: {info.get('source_dir')} (not trained here)")
        return
    if info.get("synthetic"):
        print("training   none: random weights of this shape (circuit-engine synth), for benchmarks only")
        return
    print(f"training   {info['steps_done']}/{info['total_steps']} steps, val loss "
          f"{info['val_loss'] if info['val_loss'] is None else round(info['val_loss'], 4)}")


def cmd_bench(args: argparse.Namespace) -> dict[str, Any]:
    from engine.cli.bench import bench_ablate, bench_prune, bench_rank, bench_train

    if args.what == "train":
        return bench_train(args.preset, steps=args.steps, device=args.device)
    task = args.task or ("bracket_counting" if args.what == "rank" else "single_double_quote")
    if args.what == "prune":
        return bench_prune(args.run, task, args.steps)
    if args.what in ("ablate", "rank"):
        return bench_ablate(args.run, task, args.pairs, args.repeats) if args.what == "ablate" else \
            bench_rank(args.run, task, (args.pairs,) if args.pairs else (24, 64))
    if args.what == "store":
        from engine.cli.store import bench_store
        return bench_store(args.run)
    if args.what == "import":
        from engine.cli.bench_import import bench_import
        return bench_import(args.shape)
    if args.what == "load":
        from engine.cli.bench_import import bench_load
        return bench_load(args.run)
    raise UserError(f"unknown benchmark {args.what!r}")


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def dist_options(sp: argparse.ArgumentParser) -> None:
    """``--dist-timeout``: the options of every command that can run under torchrun."""
    from engine.config import DEFAULT_TIMEOUT_S

    sp.add_argument("--dist-timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                    help=f"under torchrun: how long a rank waits for the rendezvous or a peer before it "
                         f"stops with an error (default {DEFAULT_TIMEOUT_S:g})")


def prune_options(sp: argparse.ArgumentParser) -> None:
    """The pruning options shared by ``prune``, ``prune-all``, ``compare`` and ``formation``."""
    sp.add_argument("--target-loss", type=float, default=0.15, help="held-out task loss to reach (default 0.15)")
    sp.add_argument("--ablation", choices=list(PRUNE_MODES), default="mean")
    sp.add_argument("--frozen-norm", action="store_true", help="patch norm divisors from the unpruned run")
    sp.add_argument("--calibrate", action="store_true", help="also report the loss after logit calibration")
    sp.add_argument("--steps", type=int, help="mask steps per k_coef (default 200)")
    sp.add_argument("--k-coefs", type=float, nargs="+", metavar="K", help="node penalties to sweep")
    sp.add_argument("--val-pairs", "--pairs", dest="val_pairs", type=int,
                    help="held-out pairs for bisection and reporting (default 200)")
    sp.add_argument("--json", action="store_true")


def _add_train(sub) -> None:
    from engine.config import DEFAULT_MASK_CHECK_EVERY, PRESETS

    t = sub.add_parser("train", help="train a weight-sparse (or --dense) GPT into a run folder")
    t.add_argument("--preset", choices=sorted(PRESETS), help="starting config (default tiny)")
    t.add_argument("--dense", action="store_true", help="train the dense twin (same data order and steps)")
    t.add_argument("--steps", type=int, help="optimizer steps (overrides the preset)")
    t.add_argument("--corpus", nargs="+", metavar="DIR", help="source folders (default: the standard library)")
    t.add_argument("--tokenizer", choices=["char", "bpe"])
    t.add_argument("--device", choices=["cpu", "cuda"], help="default: the config's (cpu)")
    t.add_argument("--config", type=Path, help="JSON file of config overrides (strict keys)")
    t.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override one config value")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    t.add_argument("--out", required=True, help="run folder to create (or to resume)")
    t.add_argument("--print-every", type=float, default=2.0, help="seconds between progress lines")
    t.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    dist_options(t)
    t.add_argument("--mask-check-every", type=int, default=DEFAULT_MASK_CHECK_EVERY, metavar="K",
                   help=f"under torchrun: compare the ranks' top-k mask checksums every K steps "
                        f"(default {DEFAULT_MASK_CHECK_EVERY})")
    t.set_defaults(func=cmd_train)


def _add_inspect(sub) -> None:
    """``info``, ``ablate``, ``tasks`` and ``eval-tasks``."""
    i = sub.add_parser("info", help="config, parameters and density of a run")
    i.add_argument("run")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info, printer=_print_info)

    ab = sub.add_parser("ablate", help="task metrics with nodes or single weights ablated")
    ab.add_argument("run")
    ab.add_argument("--task")
    ab.add_argument("--task-file", type=Path)
    ab.add_argument("--circuit", help="circuit file or task name: ablate on top of the circuit baseline")
    ab.add_argument("--nodes", help="comma-separated SITE:INDEX, e.g. blocks.0.mlp.neuron:12")
    ab.add_argument("--edges", help="comma-separated SRC->DST weight edges")
    ab.add_argument("--mode", choices=list(MODES), default="mean")
    ab.add_argument("--pairs", type=int, default=64, help="held-out pairs (default 64)")
    ab.add_argument("--json", action="store_true")
    ab.set_defaults(func=cmd_ablate, printer=_print_ablate)

    tk = sub.add_parser("tasks", help="list the built-in tasks with one example pair each")
    tk.add_argument("--json", action="store_true")
    tk.set_defaults(func=cmd_tasks, printer=_print_tasks)

    ev = sub.add_parser("eval-tasks", help="held-out task loss and accuracy of a run's full model")
    ev.add_argument("run", help="run folder, or demo / demo-dense")
    ev.add_argument("--tasks", nargs="+", metavar="NAME", help="default: all built-in tasks")
    ev.add_argument("--task-file", nargs="+", type=Path, metavar="FILE", help="user task files (JSON)")
    ev.add_argument("--pairs", type=int, default=200, help="held-out pairs per task (default 200)")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_eval_tasks, printer=_print_eval)


def _add_circuits(sub) -> None:
    """``prune`` and ``faithfulness``."""
    pr = sub.add_parser("prune", help="find the circuit of one task")
    pr.add_argument("run", help="run folder, or demo / demo-dense")
    pr.add_argument("--task", help="built-in task name (see `circuit-engine tasks`)")
    pr.add_argument("--task-file", type=Path, help="a user task file (JSON)")
    pr.add_argument("--name", help="file name of the circuit (default: the ablation mode)")
    prune_options(pr)
    pr.set_defaults(func=cmd_prune, printer=_print_prune)

    fa = sub.add_parser("faithfulness", help="sufficiency, necessity and random baselines of a circuit")
    fa.add_argument("run")
    fa.add_argument("circuit", help="circuit file, or a task name (its circuit in the run)")
    fa.add_argument("--pairs", type=int, default=200)
    fa.add_argument("--json", action="store_true")
    fa.set_defaults(func=cmd_faithfulness, printer=_print_faith)


def _add_bench(sub) -> None:
    from engine.config import PRESETS

    b = sub.add_parser("bench", help="benchmarks that print numbers")
    b.add_argument("what", choices=["train", "prune", "ablate", "rank", "store", "import", "load"])
    b.add_argument("--shape", default="csp_yolo2", choices=["csp_yolo2", "small"],
                   help="import: the size of the OpenAI model file written and imported (default csp_yolo2)")
    b.add_argument("--run", default="demo", help="prune, ablate, load: the run (default demo; e.g. a `synth` run)")
    b.add_argument("--pairs", type=int, help="ablate: task pairs (default 64; 24 paper-scale); rank: default 24 and 64")
    b.add_argument("--repeats", type=int, help="ablate: random nodes timed per layer (default 40; 8 paper-scale)")
    b.add_argument("--task", help="the task (default single_double_quote; rank: bracket_counting's 112 nodes)")
    b.add_argument("--preset", default="demo", choices=sorted(PRESETS))
    b.add_argument("--steps", type=int, help="train: timed steps (default 30; 3 for paper-1x); prune: mask steps "
                                             "per k_coef of the whole prune (paper-scale runs prune whole only with it)")
    b.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    from engine.cli.compare import register as register_compare_commands
    from engine.cli.dist import register as register_dist_commands
    from engine.cli.diff import register as register_diff_command
    from engine.cli.export import register as register_export_command
    from engine.cli.interop import register as register_interop_commands
    from engine.cli.mechanism import register as register_mechanism_commands
    from engine.cli.mechanism import register_trace
    from engine.cli.rank import register as register_rank_command
    from engine.cli.store import register as register_store_commands

    p = _Parser(prog="circuit-engine", description="Train weight-sparse transformers and inspect their circuits.")
    p.add_argument("-v", "--verbose", action="store_true", help="log engine details to stderr")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub)
    _add_inspect(sub)
    _add_circuits(sub)
    register_dist_commands(sub, prune_options, dist_options)
    register_compare_commands(sub, prune_options)
    register_store_commands(sub)
    register_export_command(sub)
    register_diff_command(sub)
    register_interop_commands(sub)
    register_rank_command(sub)
    register_mechanism_commands(sub)
    register_trace(sub)
    _add_bench(sub)
    return p


def _terminate_as_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (kill, a batch scheduler's preemption) cancels like Ctrl+C: a training writes a checkpoint
        # of its last completed step, a recording removes its partial file.
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed as one line
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    keep_freed_memory()  # a click's activations stay mapped for the next one (engine/allocator.py)
    try:
        result = args.func(args)
    except UserError as exc:
        if not getattr(exc, "reported_elsewhere", False):  # an error rank 0 already reports
            _err(f"error: {_rank_prefix()}{' '.join(str(exc).splitlines())}")  # one line, always
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except MemoryError:
        _err("error: ran out of memory; use smaller sizes (fewer tokens, pairs or steps, a smaller model or batch)")
        return 2
    if result is None:  # a torchrun rank other than 0: rank 0 reports
        return 0
    if getattr(args, "json", False):
        print(json.dumps(result, default=str))
    else:
        printer: Callable[[dict[str, Any]], None] = getattr(args, "printer", None) or _print_plain
        printer(result)
    return 0


def _rank_prefix() -> str:
    """'rank N: ' in a torchrun process other than rank 0, so its own errors say where they happened."""
    rank = os.environ.get("RANK", "0")
    return f"rank {rank}: " if os.environ.get("WORLD_SIZE", "1") != "1" and rank != "0" else ""


def _print_plain(result: dict[str, Any]) -> None:
    for k, v in result.items():
        print(f"{k}: {v}")

