"""What a run trains on: the corpus and idiom snippets as token streams (:func:`prepare_data`), and
the bundle rank 0 builds and hands to the other ranks of a torchrun group (:class:`Setup`: the
validated config, the tokens, the corpus statistics and the checkpoint to resume from, as JSON plus
raw bytes, never pickles). Knows nothing about optimisation, Qt or printing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generator

from engine.config import RunConfig, run_config_from_dict
from engine.data.corpus import CorpusStats, TokenData, generate_snippet_text, read_sources, snippet_budget
from engine.errors import UserError
from engine.fileio import atomic_write_json
from engine.jobs import run_to_end
from engine.runs import CONFIG_FILE, TOKENIZER_FILE
from engine.data.tokenizer import build_tokenizer, save_tokenizer


def prepare_data(cfg: RunConfig, tokenizer=None):
    """Read the corpus, build (or reuse) the tokenizer and tokenise everything -> (tok, data, stats)."""
    return run_to_end(prepare_data_steps(cfg, tokenizer))


def prepare_data_steps(cfg: RunConfig, tokenizer=None) -> Generator[str, None, tuple]:
    """:func:`prepare_data` as a generator that yields the name of each phase before it starts."""
    yield "reading the corpus"
    src = read_sources(cfg.data)
    yield "generating idiom snippets"
    train_tokens = cfg.train.steps * cfg.train.batch_size * cfg.model.n_ctx
    snip_train, snip_val = generate_snippet_text(cfg.train.seed, snippet_budget(cfg.data, train_tokens))
    if tokenizer is None:
        yield "building the tokenizer"
        sample = [src.train[:4_000_000], snip_train[:1_000_000]]
        tokenizer = build_tokenizer(cfg.data.tokenizer, sample, cfg.data.bpe_vocab)
    yield "tokenizing"
    data = TokenData(tokenizer.encode(src.train), tokenizer.encode(src.val), tokenizer.encode(snip_train),
                     tokenizer.encode(snip_val), cfg.data.snippet_frac, cfg.model.n_ctx, cfg.train.seed)
    stats = replace(src.stats, snippet_chars=len(snip_train))
    return tokenizer, data, stats


@dataclass(frozen=True)
class Setup:
    """What every rank needs to start training; rank 0 builds it and hands it to the others."""

    cfg: RunConfig
    data: TokenData
    stats: CorpusStats
    tokenizer_kind: str
    ckpt: bytes | None  # the checkpoint file to resume from (safetensors)
    ckpt_meta: dict[str, Any] | None
    tokenizer: Any = None  # rank 0 only (not handed to the other ranks)


def setup_steps(run_dir: Path, cfg: RunConfig, tokenizer, ckpt, resume: bool) -> Generator[str, None, Setup]:
    """Rank 0: read the corpus, build the tokenizer, create the run folder, read the checkpoint; yields
    between the phases (so a single process can be cancelled while the corpus is read)."""
    tokenizer, data, stats = yield from prepare_data_steps(cfg, tokenizer)
    if not resume:
        cfg = replace(cfg, model=replace(cfg.model, vocab_size=tokenizer.vocab_size)).validate()
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_tokenizer(tokenizer, run_dir / TOKENIZER_FILE)
            atomic_write_json(run_dir / CONFIG_FILE, cfg.to_dict())
        except OSError as exc:
            raise UserError(f"cannot write the run to {run_dir} ({exc.strerror or exc}); choose an output "
                            f"folder you can write to") from None
    raw = ckpt.weights.read_bytes() if ckpt is not None else None
    return Setup(cfg, data, stats, tokenizer.kind, raw, ckpt.meta if ckpt is not None else None, tokenizer)


def encode_setup(s: Setup) -> tuple[dict, dict[str, bytes]]:
    header, blobs = s.data.to_blobs()
    head = {"config": s.cfg.to_dict(), "stats": s.stats.__dict__, "data": header, "tokenizer": s.tokenizer_kind,
            "ckpt_meta": s.ckpt_meta}
    return head, ({**blobs, "ckpt": s.ckpt} if s.ckpt is not None else blobs)


def decode_setup(head: dict, blobs: dict[str, bytes]) -> Setup:
    stats = CorpusStats(**{**head["stats"], "folders": tuple(head["stats"]["folders"])})
    return Setup(run_config_from_dict(head["config"]), TokenData.from_blobs(head["data"], blobs), stats,
                  head["tokenizer"], blobs.get("ckpt"), head["ckpt_meta"])
