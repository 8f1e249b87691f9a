"""``circuit-engine bench import``: import time and peak memory for an OpenAI model file of a released
model's size, written here as their train.py writes it (``beeg_config.json`` + ``final_model.pt``:
a dense float32 state dict with exact zeros, through a file object), so no download is needed.

The weights are random at the paper's sparsity (a few nonzeros per row); only the file's size and
layout matter for this benchmark. The import runs in a child process, so its peak resident memory
(``ru_maxrss`` of the child) is the import's own. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from engine.config import ModelConfig

#: Shapes of released models (csp_yolo2: ~470M parameters, as in the README of their repo; its exact
#: layer count is not published, 9 layers of this width give that size).
SHAPES = {
    "csp_yolo2": ModelConfig(vocab_size=2048, n_layer=9, d_model=2048, d_head=16, d_mlp=8192, n_ctx=1024,
                             attn_sink=False, bigram_table=True, afrac=1.0, norm_eps=torch.finfo(torch.float32).eps,
                             pos_additive=True),
    "small": ModelConfig(vocab_size=2048, n_layer=2, d_model=256, d_head=16, d_mlp=1024, n_ctx=256, attn_sink=False,
                         bigram_table=False, afrac=1.0, norm_eps=torch.finfo(torch.float32).eps, pos_additive=True),
}


def write_openai_model(folder: Path, mc: ModelConfig, nonzero_per_row: int = 4, seed: int = 0) -> Path:
    """A model folder in OpenAI's layout for ``mc`` with random sparse weights; returns the .pt path."""
    from engine.interop.openai_format import normalize_config, openai_config, tensor_specs

    cfg = openai_config(mc)
    theirs, _ = normalize_config(cfg, "bench")
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for spec in tensor_specs(theirs):
        shape = spec.shapes[0]
        t = torch.zeros(shape)
        if len(shape) == 2:
            cols = torch.randint(0, shape[1], (shape[0], nonzero_per_row), generator=gen)
            t.scatter_(1, cols, torch.randn(shape[0], nonzero_per_row, generator=gen) * 0.1)
        elif spec.theirs.endswith(".weight"):
            t.fill_(1.0)  # norm gains
        sd[spec.theirs] = t
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "beeg_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    path = folder / "final_model.pt"
    with path.open("wb") as fh:  # through a file object: the zip prefix is "archive/", as theirs
        torch.save(sd, fh)
    return path


def bench_import(shape: str = "csp_yolo2") -> dict[str, Any]:
    mc = SHAPES[shape]
    with tempfile.TemporaryDirectory(prefix="ci-bench-import-") as tmp:
        t0 = time.perf_counter()
        weights = write_openai_model(Path(tmp) / "model", mc)
        write_s = time.perf_counter() - t0
        code = ("import sys; from engine.interop.openai_import import import_openai; "
                "import_openai(sys.argv[1], sys.argv[2])")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, str(weights.parent), str(Path(tmp) / "run")],
                              capture_output=True, text=True)
        import_s = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"the import failed:\n{proc.stderr}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
        size = weights.stat().st_size
        run_bytes = sum(p.stat().st_size for p in (Path(tmp) / "run").rglob("*") if p.is_file())
    if before >= peak:  # an earlier child of this process was larger: the number would not be the import's
        peak = None
    return {"benchmark": "import", "shape": shape, "parameters": _n_params(mc), "file_bytes": size,
            "write_s": round(write_s, 1), "import_s": round(import_s, 1), "peak_rss_bytes": peak,
            "peak_over_file": None if peak is None else round(peak / size, 2), "run_bytes": run_bytes}


def _n_params(mc: ModelConfig) -> int:
    from engine.model import GPT

    with torch.device("meta"):
        return sum(p.numel() for p in GPT(mc).parameters())


def bench_load(run: str) -> dict[str, Any]:
    """Seconds and peak RSS of loading a run (``load_run``: read, check, hash and place the weights),
    in a child process so the peak is the load's own; the import of torch is timed apart."""
    from engine.config import load_run_config
    from engine.errors import UserError
    from engine.runs import CONFIG_FILE, MODEL_FILE, check_run_dir

    folder = check_run_dir(run)
    load_run_config(folder / CONFIG_FILE)  # a bad run is one error here, not a child's traceback
    if not (folder / MODEL_FILE).is_file():
        raise UserError(f"{folder} has no {MODEL_FILE} to load")
    code = ("import sys, time, json; t0 = time.perf_counter(); import torch; t1 = time.perf_counter(); "
            "from engine.runs import load_run; r = load_run(sys.argv[1]); t2 = time.perf_counter(); "
            "print(json.dumps({'torch_import_s': t1 - t0, 'load_s': t2 - t1, "
            "'parameters': sum(p.numel() for p in r.model.parameters())}))")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True)
    if proc.returncode != 0:  # e.g. damaged weights: the child's last line is the engine's message
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"loading {folder} failed: {last.split(': ', 1)[-1] if 'Error: ' in last else last}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"benchmark": "load", "run": str(folder), "parameters": out["parameters"],
            "file_bytes": (folder / MODEL_FILE).stat().st_size, "load_s": round(out["load_s"], 2),
            "torch_import_s": round(out["torch_import_s"], 2),
            "peak_rss_bytes": None if before >= peak else peak}
