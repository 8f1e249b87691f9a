"""Apply what pruning now does after bisection to saved circuits (the bundled demo's): drop the nodes
whose ablation changes no held-out logit, recompute the circuit's loss and faithfulness on the pairs
it was pruned with, and store its verdict. The result is what pruning the run again would give
(the pass is deterministic and comes after everything else pruning decides).

    .venv/bin/python scripts/refine_bundled_circuits.py [RUN]     # default: the bundled demo
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.ablation.core import group_nodes, keep_masks_from_nodes  # noqa: E402
from engine.ablation.means import load_means  # noqa: E402
from engine.circuits.circuit import list_circuits, load_circuit, make_circuit  # noqa: E402
from engine.circuits.library import task_of_circuit  # noqa: E402
from engine.jobs import run_to_end  # noqa: E402
from engine.pruning.faithfulness import faithfulness  # noqa: E402
from engine.pruning.job import with_verdict  # noqa: E402
from engine.pruning.prune import Evaluator, TaskBatch, _without_no_ops  # noqa: E402
from engine.runs import load_run  # noqa: E402
from engine.tasks.evaluate import task_data  # noqa: E402


def refine(run, path: Path) -> str:
    c = load_circuit(path, run.model, run.model_hash)
    s = c.settings
    enc = task_data(run, task_of_circuit(c), int(s.get("val_pairs", 200)), "val", int(s.get("seed", 0)))
    means = load_means(run, "mean")
    values = means if s.get("ablation", "mean") == "mean" else load_means(run, "zero")
    ev = Evaluator(run.model, values, TaskBatch(enc), bool(s.get("frozen_norm", False)))
    nodes, dropped = run_to_end(_without_no_ops(run.model, ev, list(c.nodes)))
    result = ev.run(keep_masks_from_nodes(run.model, kept=group_nodes(nodes)))
    metrics = {**c.metrics, "circuit_loss": result["loss"], "circuit_accuracy": result["accuracy"],
               "no_ops_dropped": [str(n) for n in dropped], "n_pairs": int(len(enc.target)) // 2}
    out = make_circuit(run.model, c.task, nodes, c.model_hash, run=c.run, name=c.name, metrics=metrics,
                       settings=s, labels={k: v for k, v in c.labels.items() if k in {str(n) for n in nodes}},
                       sites=c.sites)
    faith = faithfulness(run.model, out, enc, means, frozen_norm=bool(s.get("frozen_norm", False)))
    out = with_verdict(run.model, replace(out, metrics={**out.metrics, "faithfulness": faith}))
    out.save(path)
    v = out.metrics["verdict"]
    return (f"{path}: {c.n_nodes} -> {out.n_nodes} nodes (dropped {', '.join(map(str, dropped)) or 'none'}), "
            f"loss {c.metrics.get('circuit_loss'):.4f} -> {result['loss']:.4f}, verdict {v['verdict']}")


def main() -> None:
    run = load_run(sys.argv[1] if len(sys.argv) > 1 else "demo")
    for path in list_circuits(run.path):
        print(refine(run, path), flush=True)


if __name__ == "__main__":
    main()
