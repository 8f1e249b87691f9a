"""Synthetic weight-sparse runs: the shape of a paper model with random weights, without training.

``circuit-engine synth --shape csp_yolo1 --out RUN`` writes a run folder like a trained one (our
model and config, a BPE tokenizer of the model's vocabulary trained on generated Python snippets,
``model.safetensors``, ``run.json``) whose weights are random but shaped like a trained sparse model's:
every matrix keeps exactly its density budget with the per-line minimum of training
(:func:`engine.sparsity.topk_mask`), each kept weight is drawn with a scale that gives every output
unit variance on unit-variance inputs (reads) or adds a small share to the residual (writes), so norms,
AbsTopK and attention see activations of a realistic size. ``run.json`` says ``"synthetic": true``:
it is for benchmarks and for trying the app at scale, never a model that computes anything.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from engine.config import DataConfig, ModelConfig, RunConfig, SparsityConfig, TrainConfig, preset
from engine.errors import UserError
from engine.model import GPT, check_model_fits
from engine.sparsity import EMBED_KINDS, keep_count, sparse_matrices, topk_mask

#: Shapes of the paper's released models in our architecture (csp_yolo1: 8 layers, d_model 1024,
#: ~109M parameters; csp_yolo2: 9 layers of d_model 2048, ~470M), and the demo's.
SHAPES: dict[str, tuple[ModelConfig, float]] = {
    "csp_yolo1": (ModelConfig(vocab_size=2048, n_layer=8, d_model=1024, d_mlp=4096, n_ctx=1024), 1 / 500),
    "csp_yolo2": (ModelConfig(vocab_size=2048, n_layer=9, d_model=2048, d_mlp=8192, n_ctx=1024), 1 / 1000),
    "demo": (preset("demo").model, preset("demo").sparsity.density),
}
_WRITE_KINDS = ("attn.out", "mlp.out")
_TOKENIZER_CHARS = 400_000


def synth_config(shape: str, density: float | None = None) -> RunConfig:
    """The run config of a synthetic model of ``shape`` (UserError for an unknown shape or density)."""
    if shape not in SHAPES:
        raise UserError(f"unknown shape {shape!r}; choose one of: {', '.join(SHAPES)}")
    mc, default_density = SHAPES[shape]
    density = default_density if density is None else density
    if not (isinstance(density, float) and 0.0 < density <= 1.0):
        raise UserError(f"--density must be in (0, 1], got {density!r}")
    data = DataConfig(tokenizer="char") if shape == "demo" else DataConfig(tokenizer="bpe", bpe_vocab=mc.vocab_size)
    return RunConfig(preset=f"synth-{shape}", model=mc,
                     sparsity=SparsityConfig(density=density, min_per_line=4), data=data,
                     train=TrainConfig()).validate()


def _fill(p: torch.Tensor, kind: str, min_axis: int | None, frac: float, min_per_line: int, n_layer: int,
          gen: torch.Generator) -> None:
    """Overwrite matrix ``p`` (out, in) with a random sparse matrix of kept fraction ``frac``."""
    mask = topk_mask(torch.rand(p.shape, generator=gen), keep_count(p.numel(), frac), min_per_line, min_axis)
    fan_in = mask.sum(1, keepdim=True).clamp(min=1).float()  # nonzeros each output reads
    std = 1.0 / fan_in.sqrt()
    if kind in _WRITE_KINDS:
        std = std / math.sqrt(2 * n_layer)  # each half-block adds a small share to the residual
    elif kind in EMBED_KINDS:
        std = torch.ones_like(std) if kind != "unembed" else std
    p.copy_(torch.randn(p.shape, generator=gen) * std * mask)


@torch.no_grad()
def synth_model(cfg: RunConfig, seed: int = 0) -> GPT:
    """A model of ``cfg`` with random weight-sparse weights (see the module docstring)."""
    mc, sp = cfg.model, cfg.sparsity
    model = GPT.empty(mc)
    gen = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    sparse = set()
    for spec in sparse_matrices(model):
        frac = sp.embed_target if spec.kind in EMBED_KINDS else sp.density
        _fill(params[spec.name], spec.kind, spec.min_axis, frac, sp.min_per_line, mc.n_layer, gen)
        sparse.add(spec.name)
    for name, p in params.items():
        if name in sparse:
            continue
        if name.endswith("weight") and p.dim() == 1:
            p.fill_(1.0)  # norm gains
        elif name == "bigram":
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        elif name.endswith("attn.sink"):
            p.copy_(torch.randn(p.shape, generator=gen))
        else:
            p.zero_()  # biases
    return model


def synth_run(shape: str, out: Path | str, density: float | None = None, seed: int = 0) -> dict[str, Any]:
    """Write a synthetic run of ``shape`` to ``out`` (a new folder); returns a summary."""
    from engine.checkpoint import MODEL_FILE, model_state, write_model_file
    from engine.data.corpus import generate_snippet_text
    from engine.data.tokenizer import build_tokenizer, save_tokenizer
    from engine.fileio import atomic_write_json, check_out, write_new_folder
    from engine.runs import CONFIG_FILE, STATUS_FILE, TOKENIZER_FILE

    out = Path(out).expanduser()
    cfg = synth_config(shape, density)
    check_out(out)
    n = check_model_fits(cfg.model, "cpu", f"a {shape}-shaped model")
    t0 = time.perf_counter()
    text, _ = generate_snippet_text(seed, _TOKENIZER_CHARS)
    tok = build_tokenizer(cfg.data.tokenizer, [text], cfg.model.vocab_size)
    if tok.vocab_size != cfg.model.vocab_size:
        cfg = replace(cfg, model=replace(cfg.model, vocab_size=tok.vocab_size)).validate()
    model = synth_model(cfg, seed)
    params = dict(model.named_parameters())
    nonzero = sum(int(torch.count_nonzero(params[m.name])) for m in sparse_matrices(model))  # not the bigram table
    status = {"complete": True, "synthetic": True, "shape": shape, "seed": seed, "steps_done": 0, "total_steps": 0,
              "tokenizer": tok.kind, "note": "random weight-sparse weights of a paper model's shape, for benchmarks "
                                             "and for trying the app at scale; it was never trained"}

    def write(tmp: Path) -> None:
        atomic_write_json(tmp / CONFIG_FILE, cfg.to_dict())
        write_model_file(tmp / MODEL_FILE, model_state(model), {"source": "synthetic"})  # and its checksum
        save_tokenizer(tok, tmp / TOKENIZER_FILE)
        atomic_write_json(tmp / STATUS_FILE, status)

    write_new_folder(out, write)
    return {"run": str(out), "shape": shape, "parameters": n, "nonzero_weights": nonzero,
            "density": cfg.sparsity.density, "vocab_size": cfg.model.vocab_size, "seconds": round(time.perf_counter() - t0, 1)}
