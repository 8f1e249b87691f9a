"""``circuit-engine import-openai`` and ``export-openai``: OpenAI ``circuit_sparsity`` model folders
to run folders and back (:mod:`engine.interop`); ``synth``: a random run of a paper model's shape
(:mod:`engine.train.synth`). The handlers return dicts that the CLI prints as
one line, or as one JSON object with ``--json``. Knows nothing about Qt.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_import_openai(args: argparse.Namespace) -> dict[str, Any]:
    from engine.cli.main import _drive
    from engine.interop.openai_import import import_openai_job

    return _drive(import_openai_job(args.model_dir, args.out, args.tokenizer, args.circuits))


def _print_import(r: dict[str, Any]) -> None:
    tok = "with its tokenizer" if r["tokenizer"] else "without a tokenizer (token ids only; add one with --tokenizer)"
    ignored = f"; ignored config keys: {', '.join(r['ignored_keys'])}" if r["ignored_keys"] else ""
    print(f"imported {r['model_dir']} into {r['run']}: {r['n_layer']} layers, d_model {r['d_model']}, "
          f"{r['parameters']:,} parameters ({r['nonzero_parameters']:,} nonzero), {tok}{ignored}")
    for c in r.get("circuits") or []:
        loss = "" if c["circuit_loss"] is None else (f"; OpenAI's stored task loss per sequence: circuit "
                                                     f"{c['circuit_loss']:.4f}, full model {c['full_loss']:.4f}")
        print(f"  circuit {c['task']}/{c['name']}: {c['nodes']} nodes, {c['edges']} weights{loss} -> {c['path']}")


def cmd_export_openai(args: argparse.Namespace) -> dict[str, Any]:
    from engine.cli.main import _drive
    from engine.interop.openai_export import export_openai_job

    return _drive(export_openai_job(args.run, args.out))


def _print_export(r: dict[str, Any]) -> None:
    tok = f" and a tinypython tokenizer in {r['tokenizer_dir']}" if r.get("tokenizer_dir") else ""
    print(f"exported {r['run']} to {r['out']}: {', '.join(r['files'])}{tok}")


def cmd_synth(args: argparse.Namespace) -> dict[str, Any]:
    from engine.train.synth import synth_run

    return synth_run(args.shape, args.out, args.density, args.seed)


def _print_synth(r: dict[str, Any]) -> None:
    print(f"wrote {r['run']}: a random {r['shape']}-shaped run ({r['parameters']:,} parameters, "
          f"{r['nonzero_weights']:,} nonzero weights, density {r['density']:.4g}) in {r['seconds']} s; "
          f"synthetic, never trained: for benchmarks and for trying the app at scale")


def register(sub: Any) -> None:
    """Add ``import-openai`` and ``export-openai`` (``sub`` from ``ArgumentParser.add_subparsers``)."""
    im = sub.add_parser("import-openai", help="import an OpenAI circuit_sparsity model folder as a run")
    im.add_argument("model_dir", type=Path, help="folder with beeg_config.json and final_model.pt")
    im.add_argument("--tokenizer", type=Path, metavar="TOK_DIR",
                    help="their tokenizer folder (encoder.json + vocab.bpe, e.g. tinypython/)")
    im.add_argument("--circuits", type=Path, metavar="VIZ_MODEL_DIR",
                    help="their circuit folder for this model (viz/<model>/ with <task>/<sweep>/<k>/viz_data.pt)")
    im.add_argument("--out", type=Path, required=True, help="the new run folder (must not exist or be empty)")
    im.add_argument("--json", action="store_true")
    im.set_defaults(func=cmd_import_openai, printer=_print_import)

    ex = sub.add_parser("export-openai", help="write a run as an OpenAI circuit_sparsity model folder")
    ex.add_argument("run", help="run folder")
    ex.add_argument("--out", type=Path, required=True, help="the model folder to write (must not exist or be empty)")
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(func=cmd_export_openai, printer=_print_export)

    from engine.train.synth import SHAPES
    sy = sub.add_parser("synth", help="a random weight-sparse run of a paper model's shape (benchmarks, trying the app)")
    sy.add_argument("--shape", required=True, choices=list(SHAPES))
    sy.add_argument("--density", type=float, help="kept fraction of the block matrices (default: the shape's, "
                                                    "1/500 for csp_yolo1, 1/1000 for csp_yolo2)")
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--out", type=Path, required=True, help="the new run folder (must not exist or be empty)")
    sy.add_argument("--json", action="store_true")
    sy.set_defaults(func=cmd_synth, printer=_print_synth)
