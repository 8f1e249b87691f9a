"""``circuit-engine export-openai``: a run folder as an OpenAI ``circuit_sparsity`` model folder
(../shared/fixtures/openai/FORMAT.md §1.1-§1.3).

Writes what their train.py writes: ``beeg_config.json`` (every GPTConfig key, one line of JSON with
default separators) and ``final_model.pt`` (``torch.save`` of a plain state dict of dense float32
tensors, through a file object, so the zip's prefix is ``archive/`` and its entries are stored
uncompressed; a tied lm_head is the same tensor as wte). A BPE tokenizer in their format goes to
``tinypython/`` beside them. What their format cannot express (our character tokenizer, ALiBi,
position channels normalised with the content, our norm eps, rounded AbsTopK k) is one UserError
naming it, before anything is written. A model without positions gets their additive table, all zeros.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generator

import torch

from engine.checkpoint import model_state
from engine.errors import UserError
from engine.interop.openai_format import CONFIG_FILE, WEIGHTS_FILE, openai_config, tensor_specs
from engine.fileio import check_out, write_new_folder
from engine.interop.openai_tokenizer import tinypython_files
from engine.jobs import run_to_end
from engine.model import GPT
from engine.runs import load_run

TOKENIZER_DIR = "tinypython"
"Subfolder of an export that holds the tokenizer files (their models/<name>/ folders hold none)."


@dataclass(frozen=True)
class ExportEvent:
    """Progress of an export: one line for the log."""

    message: str


def export_openai(run_dir: Path | str, out: Path | str) -> dict[str, Any]:
    """Write a run as an OpenAI model folder ``out``; returns what was written."""
    return run_to_end(export_openai_job(run_dir, out))


def export_openai_job(run_dir: Path | str, out: Path | str) -> Generator[ExportEvent, None, dict[str, Any]]:
    """Check that their format can express the run, then write the folder (temporary name, renamed)."""
    out = Path(out).expanduser()
    check_out(out)
    run = load_run(run_dir)
    mc = run.config.model
    if mc.n_head * mc.d_head != mc.d_model and mc.d_model % mc.n_head:
        raise UserError(f"OpenAI's model needs d_model ({mc.d_model}) to be a multiple of the number of heads "
                        f"({mc.n_head}); this run cannot be exported")
    theirs = openai_config(mc)
    tok_files = tinypython_files(run.tokenizer) if run.tokenizer is not None else None
    state = export_state(run.model, theirs)
    yield ExportEvent(f"writing {out}")

    def write(tmp: Path) -> None:
        (tmp / CONFIG_FILE).write_text(json.dumps(theirs), encoding="utf-8")  # as json.dump: one line
        with open(tmp / WEIGHTS_FILE, "wb") as fh:  # a file object: the zip prefix is archive/
            torch.save(state, fh)
        if tok_files is not None:
            (tmp / TOKENIZER_DIR).mkdir()
            for name, text in tok_files.items():
                (tmp / TOKENIZER_DIR / name).write_text(text, encoding="utf-8")

    write_new_folder(out, write)
    return {"run": str(run.path), "out": str(out), "files": [CONFIG_FILE, WEIGHTS_FILE],
            "tokenizer_dir": str(out / TOKENIZER_DIR) if tok_files is not None else None, "config": theirs}


def export_state(model: GPT, theirs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Their state dict (their names and order, dense float32) for our model."""
    own = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    for spec in tensor_specs(theirs):
        if spec.ours is None:  # the tied lm_head: the very tensor of wte
            state[spec.theirs] = state["transformer.wte.weight"]
        elif spec.ours in own:
            state[spec.theirs] = own[spec.ours].detach().to("cpu", torch.float32).contiguous()
        elif spec.ours == "wpe_add":  # no positions: their additive table, all zeros
            state[spec.theirs] = torch.zeros(spec.shapes[0])
        else:
            raise RuntimeError(f"export-openai: our model has no {spec.ours} for their {spec.theirs}")
    used = {s.ours for s in tensor_specs(theirs)}
    left = sorted(set(model_state(model)) - used)
    if left:  # a parameter their format has no place for: a bug in the mapping, not a user's mistake
        raise RuntimeError(f"export-openai: our parameters {left} have no OpenAI name")
    return state
