"""OpenAI's ``tinypython`` tokenizer files as our BPE tokenizer (../shared/fixtures/openai/FORMAT.md §1.3).

A tokenizer folder holds GPT-2 "data-gym" files: ``vocab.bpe`` (a header line, then one ``a b``
merge per line) and ``encoder.json`` (token string -> rank, bytes written in GPT-2's byte-to-unicode
alphabet). Ranks 0-255 are the single bytes, then one rank per merge; ``<|endoftext|>`` follows as the
only special token (2047 in tinypython_2k). :func:`load_openai_tokenizer` builds a ``tokenizers``
byte-level BPE from them with their pre-tokenizer regex as a Split step, wrapped in our
:class:`engine.data.tokenizer.BPETokenizer`, so it saves to and loads from ``tokenizer.json`` like a
tokenizer we trained. Every problem is one UserError naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.data.tokenizer import BPETokenizer
from engine.errors import UserError
from engine.fileio import read_json
from engine.interop.openai_format import TOKENIZER_FILES

#: Their pre-tokenizer (tinypython.py's pat_str).
PRETOKEN_PATTERN = (r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
END_OF_TEXT = "<|endoftext|>"


#: The bytes in rank order of the data-gym files: the printable ones other than space, then the rest.
_BYTE_ORDER = [b for b in range(256) if chr(b).isprintable() and b != 32] + \
    [b for b in range(256) if not (chr(b).isprintable() and b != 32)]


def _byte_alphabet() -> list[str]:
    """GPT-2's byte -> printable character map, as a list indexed by byte (the rest get 256, 257, ...)."""
    out = {b: chr(b) for b in _BYTE_ORDER[:188]}
    out.update({b: chr(256 + i) for i, b in enumerate(_BYTE_ORDER[188:])})
    return [out[b] for b in range(256)]


def _read_merges(path: Path) -> list[tuple[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"tokenizer file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read tokenizer file {path}: {exc}") from None
    lines = text.split("\n")[1:-1]  # their reader: a header line, and the file ends with a newline
    merges = []
    for n, line in enumerate(lines, start=2):
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise UserError(f"{path} line {n}: expected a merge 'A B', got {line[:40]!r}")
        merges.append((parts[0], parts[1]))
    return merges


def _read_encoder(path: Path) -> dict[str, int]:
    data: Any = read_json(path, what="tokenizer file")
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                                             for k, v in data.items()):
        raise UserError(f"{path} is not an encoder (a JSON object of token string -> rank)")
    return data


def _check_ranks(encoder: dict[str, int], merges: list[tuple[str, str]], folder: Path) -> dict[str, int]:
    """The ranks without the special token, checked against the merges as their loader does."""
    ranks = {k: v for k, v in encoder.items() if k != END_OF_TEXT}
    n = 256 + len(merges)
    if sorted(ranks.values()) != list(range(n)):
        raise UserError(f"{folder}: encoder.json has {len(ranks)} ranks, vocab.bpe implies ranks 0..{n - 1} "
                        f"(256 bytes + {len(merges)} merges); are the two files from the same tokenizer?")
    alphabet = _byte_alphabet()
    wrong = [b for rank, b in enumerate(_BYTE_ORDER) if ranks.get(alphabet[b]) != rank]
    if wrong:
        raise UserError(f"{folder}: the single-byte tokens do not have ranks 0-255 in the data-gym order (byte "
                        f"{wrong[0]} has rank {ranks.get(alphabet[wrong[0]])}); not a tinypython-format tokenizer")
    for i, (a, b) in enumerate(merges):
        if ranks.get(a + b) != 256 + i:
            raise UserError(f"{folder}: merge {i + 1} ({a} {b}) gives rank {ranks.get(a + b)} in encoder.json, "
                            f"expected {256 + i}; are the two files from the same tokenizer?")
    eot = encoder.get(END_OF_TEXT, n)
    if eot != n:
        raise UserError(f"{folder}: encoder.json gives {END_OF_TEXT} id {eot}, expected {n} (right after the merges)")
    return ranks


def load_openai_tokenizer(folder: Path) -> BPETokenizer:
    """Our BPE tokenizer for a tinypython-format folder (``encoder.json`` + ``vocab.bpe``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"tokenizer folder not found: {folder}")
    absent = [f for f in TOKENIZER_FILES if not (folder / f).is_file()]
    if absent:
        raise UserError(f"{folder} is not a tinypython tokenizer folder: {' and '.join(absent)} missing "
                        f"(it needs {' and '.join(TOKENIZER_FILES)})")
    merges = _read_merges(folder / "vocab.bpe")
    ranks = _check_ranks(_read_encoder(folder / "encoder.json"), merges, folder)
    import tokenizers as tk

    tok = tk.Tokenizer(tk.models.BPE(vocab=ranks, merges=merges))
    tok.pre_tokenizer = tk.pre_tokenizers.Sequence([
        tk.pre_tokenizers.Split(tk.Regex(PRETOKEN_PATTERN), behavior="isolated"),
        tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = tk.decoders.ByteLevel()
    tok.add_special_tokens([tk.AddedToken(END_OF_TEXT, special=True, normalized=False)])
    if tok.token_to_id(END_OF_TEXT) != len(ranks):  # pragma: no cover - tokenizers assigns the next id
        raise UserError(f"{folder}: {END_OF_TEXT} did not get id {len(ranks)}")
    return BPETokenizer(tok)


def tinypython_files(tok: Any) -> dict[str, str]:
    """``encoder.json`` and ``vocab.bpe`` texts for a run's tokenizer, in the tinypython file format.

    Only a byte-level BPE whose pre-tokenizer is theirs and whose ids are data-gym ranks (one per merge,
    ``<|endoftext|>`` last) can be written: their loader fixes the regex and the special token, so any
    other tokenizer would give other ids under their code. Anything else is one UserError.
    """
    if not isinstance(tok, BPETokenizer):
        raise UserError(f"OpenAI's format has only byte-level BPE tokenizers (tinypython); this run's tokenizer "
                        f"is {getattr(tok, 'kind', type(tok).__name__)!r}, which their code cannot read")
    spec = json.loads(tok.to_json_str())
    splits = [p for p in (spec.get("pre_tokenizer") or {}).get("pretokenizers", []) if p.get("type") == "Split"]
    if [p.get("pattern", {}).get("Regex") for p in splits] != [PRETOKEN_PATTERN]:
        raise UserError("this run's BPE tokenizer splits text with another pre-tokenizer than their tinypython "
                        "regex, so their code would give other token ids; OpenAI's format cannot express it")
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["model"]["merges"]]
    encoder = dict(spec["model"]["vocab"])
    for added in spec.get("added_tokens", []):
        encoder[added["content"]] = added["id"]
    if set(encoder) - set(spec["model"]["vocab"]) != {END_OF_TEXT}:
        raise UserError(f"this run's tokenizer does not have exactly one special token, {END_OF_TEXT}, "
                        f"as OpenAI's tinypython format does")
    _check_ranks(encoder, merges, Path("this run's tokenizer"))
    return {"encoder.json": json.dumps(encoder, ensure_ascii=False),
            "vocab.bpe": "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)}
