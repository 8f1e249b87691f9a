"""``circuit-engine import-openai``: an OpenAI ``circuit_sparsity`` model folder as an ordinary run folder.

:func:`import_openai_job` reads ``beeg_config.json`` + ``final_model.pt`` (and optionally a
tinypython tokenizer folder), checks everything before it writes anything, and writes ``config.json``
(our RunConfig; its sparsity section gives the measured densities), ``model.safetensors``,
``tokenizer.json`` (when a tokenizer folder is given) and ``run.json`` (where the model came from:
``source``, ``model_dir``, their config, the ignored keys). The folder is written under a temporary
name beside ``--out`` and renamed into place when complete, so a failed or cancelled import leaves
nothing at ``--out``. Weights stay memory-mapped from the source file until they are written.

Mapping of names and options: :mod:`engine.interop.openai_format`. Knows nothing about tasks or Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generator

import torch

from engine.checkpoint import MODEL_FILE, model_state, write_model_file
from engine.config import DataConfig, ModelConfig, RunConfig, SparsityConfig
from engine.data.tokenizer import save_tokenizer
from engine.errors import UserError
from engine.fileio import atomic_write_json, check_out, read_json, write_new_folder
from engine.interop.openai_format import (CONFIG_FILE, WEIGHTS_FILE, TensorSpec, model_config, normalize_config,
                                          tensor_specs)
from engine.interop.openai_circuits import import_viz_circuits, viz_files
from engine.interop.openai_read import check_tensors, load_state_dict, same_tensor
from engine.interop.openai_tokenizer import load_openai_tokenizer
from engine.jobs import run_to_end
from engine.runs import CONFIG_FILE as RUN_CONFIG_FILE
from engine.runs import STATUS_FILE, TOKENIZER_FILE

PRESET = "openai"
"The RunConfig.preset of an imported run (informational)."
_MATRIX_SUFFIXES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_EMBED_NAMES = ("wte.weight", "lm_head.weight", "wpe_add")


@dataclass(frozen=True)
class ImportEvent:
    """Progress of an import: one line for the log."""

    message: str


def import_openai(model_dir: Path | str, out: Path | str, tokenizer_dir: Path | str | None = None) -> dict[str, Any]:
    """Import a model folder into a new run folder ``out``; returns what was written (see the job)."""
    return run_to_end(import_openai_job(model_dir, out, tokenizer_dir))


def model_files(model_dir: Path) -> tuple[Path, Path]:
    """The config and weights files of a model folder, else one UserError naming what is missing."""
    if not model_dir.is_dir():
        raise UserError(f"model folder not found: {model_dir}")
    absent = [f for f in (CONFIG_FILE, WEIGHTS_FILE) if not (model_dir / f).is_file()]
    if absent:
        raise UserError(f"{model_dir} is not an OpenAI model folder: {' and '.join(absent)} missing "
                        f"(it needs {CONFIG_FILE} and {WEIGHTS_FILE}, as in their models/<name>/)")
    return model_dir / CONFIG_FILE, model_dir / WEIGHTS_FILE


def import_openai_job(model_dir: Path | str, out: Path | str, tokenizer_dir: Path | str | None = None,
                      circuits_dir: Path | str | None = None) -> Generator[ImportEvent, None, dict[str, Any]]:
    """Check the model (and tokenizer), convert, write the run folder with the circuits of
    ``circuits_dir`` (their ``viz/<model>/``); returns a summary dict. Nothing reaches ``out`` unless
    every file was read."""
    model_dir, out = Path(model_dir).expanduser(), Path(out).expanduser()
    check_out(out)
    config_path, weights_path = model_files(model_dir)
    if circuits_dir is not None:
        circuits_dir = Path(circuits_dir).expanduser()
        viz_files(circuits_dir)  # a missing or empty folder fails before the work
    raw = read_json(config_path, what="model config")
    theirs, ignored_keys = normalize_config(raw, str(config_path))
    mc = model_config(theirs, str(config_path))
    tok = None
    if tokenizer_dir is not None:
        tok = load_openai_tokenizer(Path(tokenizer_dir).expanduser())
        if tok.vocab_size != mc.vocab_size:
            raise UserError(f"the tokenizer in {tokenizer_dir} has {tok.vocab_size} ids but the model's vocab_size "
                            f"is {mc.vocab_size}: it is not this model's tokenizer")
    yield ImportEvent(f"reading {weights_path}")
    sd = load_state_dict(weights_path)
    specs = tensor_specs(theirs)
    ignored_buffers = check_tensors(sd, specs, weights_path)
    tensors = convert_tensors(sd, specs, mc, weights_path)
    check_against_model(tensors, mc)
    nonzero = {k: int(torch.count_nonzero(t)) for k, t in tensors.items()}
    cfg = RunConfig(model=mc, sparsity=measured_sparsity(tensors, nonzero), preset=PRESET,
                    data=DataConfig(tokenizer="bpe", bpe_vocab=max(300, mc.vocab_size))).validate()
    status = {"source": "openai", "model_dir": str(model_dir.resolve()), "weights": WEIGHTS_FILE, "config": raw,
              "ignored_keys": ignored_keys, "ignored_buffers": ignored_buffers,
              "tokenizer_dir": str(Path(tokenizer_dir).resolve()) if tokenizer_dir is not None else None,
              "complete": True}
    yield ImportEvent(f"writing {out}" + (f" and the circuits of {circuits_dir}" if circuits_dir else ""))
    circuits = _write_run(out, cfg, tensors, tok, status, circuits_dir)
    return {"run": str(out), "circuits": circuits, "source": "openai", "model_dir": str(model_dir), "tokenizer": tok.kind if tok is not None else None,
            "vocab_size": mc.vocab_size, "n_layer": mc.n_layer, "d_model": mc.d_model,
            "parameters": sum(t.numel() for t in tensors.values()), "nonzero_parameters": sum(nonzero.values()),
            "matrix_density": cfg.sparsity.density, "ignored_keys": ignored_keys,
            "files": sorted(p.name for p in out.iterdir())}


def convert_tensors(sd: dict[str, torch.Tensor], specs: list[TensorSpec], mc: ModelConfig,
                    source: Path) -> dict[str, torch.Tensor]:
    """Their checked tensors under our names, float32 and contiguous (memory-mapped ones stay mapped)."""
    out: dict[str, torch.Tensor] = {}
    for spec in specs:
        t = sd.get(spec.theirs)
        if spec.ours is None:  # the tied lm_head: one tensor with wte
            if not same_tensor(t, sd["transformer.wte.weight"]):
                raise UserError(f"{source}: tied_unembed is true but lm_head.weight differs from "
                                f"transformer.wte.weight; the config does not match the weights")
            continue
        if t is None:  # final_logits_bias of older files: zeros, as their loader fills in
            t = torch.zeros(mc.vocab_size)
        if t.dtype != torch.float32:
            t = t.to(torch.float32)
        if spec.ours.endswith("attn.sink") and t.numel() == 1 and mc.n_head > 1:
            t = t.reshape(1).expand(mc.n_head)  # one sink logit shared by every head
        out[spec.ours] = t.contiguous()
    return out


def check_against_model(tensors: dict[str, torch.Tensor], mc: ModelConfig) -> None:
    """The converted tensors are exactly what our GPT of this config loads (built on the meta device)."""
    from engine.model import GPT

    with torch.device("meta"):
        model = GPT(mc)
    own = {k: tuple(v.shape) for k, v in model_state(model).items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if own != got:  # a bug in the name mapping, not a user's mistake
        diff = sorted(set(own.items()) ^ set(got.items()))
        raise RuntimeError(f"imported tensors do not match engine.model.GPT: {diff[:6]}")


def measured_sparsity(tensors: dict[str, torch.Tensor], nonzero: dict[str, int]) -> SparsityConfig:
    """A sparsity section that describes the weights (``nonzero``: each tensor's nonzero count): the
    nonzero fraction of the block matrices and of the embeddings (enabled when any block matrix has zeros)."""
    def frac(names: list[str]) -> tuple[int, int]:
        return sum(nonzero[n] for n in names), sum(tensors[n].numel() for n in names)

    nz, n = frac([k for k in tensors if k.endswith(_MATRIX_SUFFIXES)])
    enz, en = frac([k for k in tensors if k in _EMBED_NAMES])
    density = max(nz, 1) / max(n, 1)
    return SparsityConfig(enabled=density < 1.0, density=density, embed_density=enz / en if en else 0.0)


def _write_run(out: Path, cfg: RunConfig, tensors: dict[str, torch.Tensor], tok: Any, status: dict[str, Any],
               circuits_dir: Path | None = None) -> list[dict[str, Any]]:
    """Write the run (and its imported circuits) to ``out``; returns the circuits' summaries."""
    circuits: list[dict[str, Any]] = []

    def write(tmp: Path) -> None:
        atomic_write_json(tmp / RUN_CONFIG_FILE, cfg.to_dict())
        write_model_file(tmp / MODEL_FILE, tensors, {"source": "openai"})  # and its checksum; 0644 like the JSON
        if tok is not None:
            save_tokenizer(tok, tmp / TOKENIZER_FILE)
        atomic_write_json(tmp / STATUS_FILE, status)
        if circuits_dir is not None:
            for c in import_viz_circuits(circuits_dir, tmp, run_label=str(out)):
                circuits.append({**c, "path": str(out / Path(c["path"]).relative_to(tmp))})

    write_new_folder(out, write)
    return circuits
