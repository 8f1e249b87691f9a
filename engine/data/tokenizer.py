"""Tokenizers: a fixed character-level one and a small byte-level BPE trained locally.

* :class:`CharTokenizer` needs no training: id 0 is ``<unk>``, id 1 is newline, ids 2-96 are the
  printable ASCII characters ``chr(32)`` .. ``chr(126)`` (97 ids). Tabs become four spaces and
  ``\\r\\n`` becomes ``\\n`` before encoding; any other character maps to ``<unk>`` (one id per
  character, so positions line up with the text).
* :class:`BPETokenizer` wraps a ``tokenizers`` byte-level BPE (2048 ids by default) whose
  pre-tokenizer keeps runs of punctuation together, so clusters such as ``("``, ``')``, ``]]`` and
  ``):`` can become single tokens, as in the paper. It round-trips any text exactly.

Both save to and load from a small versioned JSON file (never pickle), see :func:`save_tokenizer`
and :func:`load_tokenizer`. Task code uses :func:`single_token_id` and :func:`describe_tokens` to
check that targets are single tokens.

Knows nothing about models, torch, training runs or Qt; depends only on numpy and ``tokenizers``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence, Union

import numpy as np

from engine.errors import UserError
from engine.fileio import atomic_write_text, read_json

__all__ = [
    "SCHEMA_VERSION",
    "TOKENIZER_KINDS",
    "AnyTokenizer",
    "BPETokenizer",
    "CharTokenizer",
    "build_tokenizer",
    "describe_tokens",
    "load_tokenizer",
    "save_tokenizer",
    "single_token_id",
    "tokenizer_from_dict",
]

#: Version of the JSON layout written by :func:`save_tokenizer`.
SCHEMA_VERSION = 1

#: The tokenizer kinds :func:`build_tokenizer` knows.
TOKENIZER_KINDS = ("char", "bpe")

_UNK_DISPLAY = "\ufffd"


def _display(s: str) -> str:
    """A one-line, unambiguous rendering of a token's text (backslash, newline, tab escaped)."""
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Character level
# --------------------------------------------------------------------------------------------

_CHAR_VOCAB: tuple[str, ...] = ("<unk>", "\n") + tuple(chr(c) for c in range(32, 127))

# Code point (0..127) -> id; everything else (including DEL, 127) is unk. Code points >= 128 are
# clipped to 127 before the lookup, so one table of 128 entries covers all of Unicode.
_CHAR_LUT = np.zeros(128, dtype=np.int32)
_CHAR_LUT[10] = 1
_CHAR_LUT[32:127] = np.arange(2, 97, dtype=np.int32)

# id -> text, for decode; unk decodes to U+FFFD.
_CHAR_DECODE = np.array([_UNK_DISPLAY, "\n"] + [chr(c) for c in range(32, 127)], dtype=object)


class CharTokenizer:
    """Printable ASCII plus newline, one id per character (97 ids, 0 = ``<unk>``)."""

    kind = "char"
    unk_id = 0
    newline_id = 1

    @property
    def vocab_size(self) -> int:
        return len(_CHAR_VOCAB)

    @staticmethod
    def normalize(text: str) -> str:
        """The text as the tokenizer sees it: ``\\r\\n`` -> ``\\n``, tab -> four spaces."""
        return text.replace("\r\n", "\n").replace("\t", "    ")

    def encode(self, text: str) -> np.ndarray:
        """Ids (int32) for ``text``, one per character after :meth:`normalize`."""
        text = self.normalize(text)
        if not text:
            return np.zeros(0, dtype=np.int32)
        # UTF-32 gives exactly one 4-byte code point per character (surrogatepass keeps lone
        # surrogates as one unit each), so the lookup is vectorised and never shifts positions.
        cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        return _CHAR_LUT[np.minimum(cps, 127)]

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Text for ``ids``; unk and out-of-range ids show as U+FFFD."""
        arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if arr.size == 0:
            return ""
        arr = np.where((arr >= 0) & (arr < len(_CHAR_VOCAB)), arr, 0)
        return "".join(_CHAR_DECODE[arr].tolist())

    def token_str(self, i: int) -> str:
        """Display string for one id: ``"\\n"`` for newline, ``"<unk>"`` for id 0."""
        i = int(i)
        if not 0 <= i < len(_CHAR_VOCAB):
            raise ValueError(f"token id {i} is outside the vocabulary (0..{len(_CHAR_VOCAB) - 1})")
        if i == 0:
            return "<unk>"
        return _display(_CHAR_VOCAB[i])

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "kind": self.kind, "vocab_size": self.vocab_size}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer)

    def __hash__(self) -> int:
        return hash("CharTokenizer")

    def __repr__(self) -> str:
        return "CharTokenizer(vocab_size=97)"


# --------------------------------------------------------------------------------------------
# Byte-level BPE
# --------------------------------------------------------------------------------------------

# Pre-tokens, GPT-2 style but with punctuation runs kept whole:
#   a word (letters/digits/underscore, not starting with a digit) with an optional leading space,
#   a run of digits with an optional leading space,
#   a run of punctuation with an optional leading space (so `("`, `]]`, `):`, ` +=`, ` ==`),
#   whitespace not followed by a non-space (trailing / indentation runs), then any whitespace.
_PRETOKEN_PATTERN = (
    r" ?[\p{L}_][\p{L}\p{N}_]*"
    r"| ?\p{N}+"
    r"| ?[^\s\p{L}\p{N}_]+"
    r"|\s+(?!\S)"
    r"|\s+"
)

# Where text may be cut into chunks without changing any pre-token: just before a newline that
# is followed by a non-space character (no pre-token spans such a point; see _chunks).
_SAFE_CUT = re.compile(r"\n(?=\S)")
_ANY_NEWLINE = re.compile(r"\n")
_CHUNK_CHARS = 64 * 1024


def _chunks(text: str, size: int = _CHUNK_CHARS) -> Iterator[str]:
    """Cut ``text`` into pieces of about ``size`` characters that encode exactly like the whole.

    A cut is made just before a ``\\n`` whose next character is not whitespace. No pre-token
    crosses such a point: the ``\\n`` can only join whitespace, and a whitespace run before a
    non-space splits off its final character. Where no such point exists within ``4 * size``
    characters, any newline is used (tokens at that cut may differ slightly), else no cut.
    """
    n = len(text)
    pos = 0
    while n - pos > size:
        m = _SAFE_CUT.search(text, pos + size, min(n, pos + 4 * size))
        if m is None:
            m = _ANY_NEWLINE.search(text, pos + size, min(n, pos + 4 * size))
        if m is None or m.start() <= pos:
            break
        yield text[pos : m.start()]
        pos = m.start()
    if pos < n:
        yield text[pos:]


def _hf():
    """Import ``tokenizers`` lazily (only the BPE path needs it)."""
    try:
        import tokenizers
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise UserError("the BPE tokenizer needs the 'tokenizers' package (pip install tokenizers)") from exc
    return tokenizers


class BPETokenizer:
    """A byte-level BPE from the ``tokenizers`` package; round-trips any text exactly."""

    kind = "bpe"

    def __init__(self, hf_tokenizer: Any) -> None:
        self._tok = hf_tokenizer
        self._encode_batch = getattr(hf_tokenizer, "encode_batch_fast", hf_tokenizer.encode_batch)
        self._pieces: list[str] | None = None

    # -- construction ---------------------------------------------------------------------
    @staticmethod
    def _new_hf_tokenizer() -> Any:
        tk = _hf()
        tok = tk.Tokenizer(tk.models.BPE())
        tok.pre_tokenizer = tk.pre_tokenizers.Sequence(
            [
                tk.pre_tokenizers.Split(tk.Regex(_PRETOKEN_PATTERN), behavior="isolated"),
                tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        tok.decoder = tk.decoders.ByteLevel()
        return tok

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 2048) -> BPETokenizer:
        """Train on ``texts`` (any iterable of strings; long ones are chunked at line breaks)."""
        tk = _hf()
        initial = tk.pre_tokenizers.ByteLevel.alphabet()
        if vocab_size < len(initial):
            raise UserError(
                f"BPE vocab_size must be at least {len(initial)} (the byte alphabet), got {vocab_size}"
            )
        tok = cls._new_hf_tokenizer()
        trainer = tk.trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=2,
            show_progress=False,
            initial_alphabet=initial,
            special_tokens=[],
        )

        def pieces() -> Iterator[str]:
            for text in texts:
                yield from _chunks(text)

        tok.train_from_iterator(pieces(), trainer=trainer)
        return cls(tok)

    @classmethod
    def from_json_str(cls, s: str) -> BPETokenizer:
        """Rebuild from the string :meth:`to_json_str` returned."""
        return cls(_hf().Tokenizer.from_str(s))

    def to_json_str(self) -> str:
        return self._tok.to_str()

    # -- use ------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size())

    def encode(self, text: str) -> np.ndarray:
        """Ids (int32) for ``text``; long texts are encoded in parallel chunks cut at lines."""
        if not text:
            return np.zeros(0, dtype=np.int32)
        if len(text) <= _CHUNK_CHARS:
            return np.asarray(self._tok.encode(text).ids, dtype=np.int32)
        encodings = self._encode_batch(list(_chunks(text)))
        arrays = [np.asarray(e.ids, dtype=np.int32) for e in encodings]
        return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int32)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Text for ``ids`` (bytes that do not form UTF-8 show as U+FFFD)."""
        return self._tok.decode([int(i) for i in np.asarray(ids).reshape(-1)], skip_special_tokens=False)

    def piece(self, i: int) -> str:
        """The text of one token on its own (a partial UTF-8 sequence shows as U+FFFD)."""
        if self._pieces is None:
            self._pieces = [self._tok.decode([j], skip_special_tokens=False) for j in range(self.vocab_size)]
        i = int(i)
        if not 0 <= i < len(self._pieces):
            raise ValueError(f"token id {i} is outside the vocabulary (0..{len(self._pieces) - 1})")
        return self._pieces[i]

    def token_str(self, i: int) -> str:
        """Display string for one id, e.g. ``'("'`` or ``"\\n    "``."""
        return _display(self.piece(i))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": self.kind,
            "vocab_size": self.vocab_size,
            "hf_tokenizer": self.to_json_str(),
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BPETokenizer) and other.to_json_str() == self.to_json_str()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


AnyTokenizer = Union[CharTokenizer, BPETokenizer]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _piece(tok: AnyTokenizer, i: int) -> str:
    if isinstance(tok, BPETokenizer):
        return tok.piece(i)
    return tok.decode([i])


def single_token_id(tok: AnyTokenizer, s: str) -> int | None:
    """The id if ``s`` is exactly one (known) token under ``tok``, else None.

    Unknown characters (char-level ``<unk>``) and strings that split into several tokens both give
    None, as does anything that does not decode back to ``s``.
    """
    if not s:
        return None
    ids = tok.encode(s)
    if len(ids) != 1:
        return None
    i = int(ids[0])
    if _piece(tok, i) != s:
        return None
    return i


def describe_tokens(tok: AnyTokenizer, s: str) -> str:
    """How ``s`` splits into tokens, e.g. ``'"]' -> ['"', ']']``."""
    pieces = [_piece(tok, int(i)) for i in tok.encode(s)]
    return f"{s!r} -> {pieces!r}"


def build_tokenizer(kind: str, texts: Iterable[str] = (), vocab_size: int = 2048) -> AnyTokenizer:
    """A tokenizer of ``kind``: ``"char"`` (ignores ``texts``) or ``"bpe"`` (trained on them)."""
    if kind == "char":
        return CharTokenizer()
    if kind == "bpe":
        return BPETokenizer.train(texts, vocab_size=vocab_size)
    raise UserError(f"unknown tokenizer kind {kind!r}; valid kinds: {', '.join(TOKENIZER_KINDS)}")


def tokenizer_from_dict(d: Any, source: str = "tokenizer data") -> AnyTokenizer:
    """Rebuild a tokenizer from :meth:`to_dict` output; ``source`` names it in errors."""
    if not isinstance(d, dict):
        raise UserError(f"{source} is not a tokenizer description (expected a JSON object)")
    version = d.get("schema_version")
    if version != SCHEMA_VERSION:
        raise UserError(
            f"{source} has tokenizer schema_version {version!r}; this version of Circuit Inspector "
            f"reads only schema_version {SCHEMA_VERSION}"
        )
    kind = d.get("kind")
    if kind == "char":
        tok: AnyTokenizer = CharTokenizer()
    elif kind == "bpe":
        s = d.get("hf_tokenizer")
        if not isinstance(s, str):
            raise UserError(f"{source} is a BPE tokenizer without its 'hf_tokenizer' field")
        try:
            tok = BPETokenizer.from_json_str(s)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(f"{source} has a BPE tokenizer that cannot be read: {exc}") from None
    else:
        valid = ", ".join(TOKENIZER_KINDS)
        raise UserError(f"{source} has unknown tokenizer kind {kind!r}; valid kinds: {valid}")
    expected = d.get("vocab_size")
    if expected is not None and expected != tok.vocab_size:
        raise UserError(f"{source} says vocab_size {expected} but its tokenizer has {tok.vocab_size}")
    return tok


def save_tokenizer(tok: AnyTokenizer, path: Path) -> None:
    """Write ``tok`` to ``path`` as JSON, atomically (readers never see half a file)."""
    atomic_write_text(Path(path), json.dumps(tok.to_dict(), indent=1) + "\n")


def load_tokenizer(path: Path) -> AnyTokenizer:
    """Read a tokenizer written by :func:`save_tokenizer`; problems raise :class:`UserError`."""
    path = Path(path)
    data = read_json(path, what="tokenizer file")
    return tokenizer_from_dict(data, source=f"tokenizer file {path}")
