"""Tests for the char-level and BPE tokenizers (engine.data.tokenizer)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.data import idioms
from engine.errors import UserError
from engine.data.tokenizer import (
    BPETokenizer,
    CharTokenizer,
    _chunks,
    build_tokenizer,
    describe_tokens,
    load_tokenizer,
    save_tokenizer,
    single_token_id,
)

CODE = 'def f(a, b=None):\n    x = [[1, 2], [3]]\n    print("hi", \'there\')\n    return {"a": 1}\n'


@pytest.fixture(scope="module")
def training_text() -> str:
    return idioms.generate_snippets(seed=1, n_chars=200_000)


@pytest.fixture(scope="module")
def bpe(training_text: str) -> BPETokenizer:
    return BPETokenizer.train([training_text], vocab_size=512)


# ---------------------------------------------------------------- char level


def test_char_vocab() -> None:
    tok = CharTokenizer()
    assert tok.vocab_size == 97
    assert tok.kind == "char"
    assert list(tok.encode("\n ~!")) == [1, 2, 96, 3]
    assert tok.token_str(0) == "<unk>"
    assert tok.token_str(1) == "\\n"
    assert tok.token_str(2) == " "
    assert tok.token_str(ord("a") - 30) == "a"
    assert tok.token_str(ord("\\") - 30) == "\\\\"
    with pytest.raises(ValueError):
        tok.token_str(97)


def test_char_round_trip_and_dtype() -> None:
    tok = CharTokenizer()
    text = "".join(chr(c) for c in range(32, 127)) + "\n" + CODE
    ids = tok.encode(text)
    assert ids.dtype == np.int32
    assert len(ids) == len(text)
    assert ids.min() >= 1 and ids.max() <= 96
    assert tok.decode(ids) == text
    assert tok.decode(list(ids)) == text
    assert tok.encode("").shape == (0,)
    assert tok.decode([]) == ""


def test_char_normalizes_tabs_and_crlf() -> None:
    tok = CharTokenizer()
    assert tok.decode(tok.encode("if x:\r\n\treturn 1\r\n")) == "if x:\n    return 1\n"


def test_char_unknown_characters_map_to_zero_one_per_character() -> None:
    tok = CharTokenizer()
    text = "a\u00e9b\u4e2d\U0001f600c\x00\x7f\r"  # latin-1, CJK, astral, NUL, DEL, lone CR
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert list(ids[[1, 3, 4, 6, 7, 8]]) == [0] * 6
    assert tok.decode(ids) == "a\ufffdb\ufffd\ufffdc\ufffd\ufffd\ufffd"
    assert tok.encode("\ud800x").tolist() == [0, tok.encode("x")[0]]  # lone surrogate


def test_char_encode_is_vectorised_fast() -> None:
    tok = CharTokenizer()
    text = CODE * 20_000  # ~2 MB
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert tok.decode(ids[: len(CODE)]) == CODE


# ---------------------------------------------------------------- BPE


def test_bpe_round_trips_exactly(bpe: BPETokenizer, training_text: str) -> None:
    assert bpe.kind == "bpe"
    assert 257 <= bpe.vocab_size <= 512
    ids = bpe.encode(training_text)
    assert ids.dtype == np.int32
    assert len(ids) < len(training_text) / 2  # it actually compresses
    assert bpe.decode(ids) == training_text
    odd = "h\u00e9llo \u4e2d\u6587 \U0001f600\ttab\r\nend\n"
    assert bpe.decode(bpe.encode(odd)) == odd
    assert bpe.encode("").shape == (0,)


def test_bpe_keeps_frequent_punctuation_clusters(bpe: BPETokenizer) -> None:
    assert single_token_id(bpe, '("') is not None or single_token_id(bpe, "]]") is not None
    assert single_token_id(bpe, "):") is not None
    # a cluster never merges across a letter
    assert single_token_id(bpe, '("hi') is None


def test_bpe_pretokenizer_groups_punctuation(bpe: BPETokenizer) -> None:
    pieces = bpe._tok.pre_tokenizer.pre_tokenize_str('x = [[1, 2], [3]]\nprint("a")')
    # byte-level shows a space as U+0120 and a newline as U+010A
    decoded = [p[0].replace("\u0120", " ").replace("\u010a", "\n") for p in pieces]
    assert "]]" in decoded and '("' in decoded and '")' in decoded and " [[" in decoded


def test_bpe_chunked_encoding_matches_whole_text(bpe: BPETokenizer, training_text: str) -> None:
    text = training_text + "\n".join(f"def g{i}(x):\n    return x\n  \n" for i in range(3_000))
    chunks = list(_chunks(text))
    assert len(chunks) > 2
    assert "".join(chunks) == text
    whole = np.asarray(bpe._tok.encode(text).ids, dtype=np.int32)
    assert np.array_equal(bpe.encode(text), whole)


def test_bpe_token_str(bpe: BPETokenizer) -> None:
    i = single_token_id(bpe, "\n")
    assert i is not None and bpe.token_str(i) == "\\n"
    strs = [bpe.token_str(j) for j in range(bpe.vocab_size)]
    assert all("\n" not in s for s in strs)
    with pytest.raises(ValueError):
        bpe.token_str(bpe.vocab_size)


# ---------------------------------------------------------------- helpers


def test_single_token_id_char() -> None:
    tok = CharTokenizer()
    assert single_token_id(tok, "a") == ord("a") - 30
    assert single_token_id(tok, "\n") == 1
    assert single_token_id(tok, "ab") is None
    assert single_token_id(tok, "") is None
    assert single_token_id(tok, "\u00e9") is None  # unk is never a valid target
    assert single_token_id(tok, "\t") is None  # becomes four spaces


def test_describe_tokens() -> None:
    tok = CharTokenizer()
    assert describe_tokens(tok, '"]') == "'\"]' -> ['\"', ']']"
    assert describe_tokens(tok, "a\n") == "'a\\n' -> ['a', '\\n']"


def test_build_tokenizer(training_text: str) -> None:
    assert isinstance(build_tokenizer("char", ["ignored"]), CharTokenizer)
    tok = build_tokenizer("bpe", [training_text[:50_000]], vocab_size=300)
    assert isinstance(tok, BPETokenizer) and tok.vocab_size <= 300
    with pytest.raises(UserError, match="char.*bpe"):
        build_tokenizer("wordpiece", [])
    with pytest.raises(UserError, match="at least 256"):
        build_tokenizer("bpe", ["abc"], vocab_size=100)


# ---------------------------------------------------------------- save / load


def test_save_load_char(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "tokenizer.json"
    save_tokenizer(CharTokenizer(), path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and data["kind"] == "char"
    tok = load_tokenizer(path)
    assert isinstance(tok, CharTokenizer)
    assert tok.decode(tok.encode(CODE)) == CODE
    assert sorted(p.name for p in path.parent.iterdir()) == ["tokenizer.json"]  # no temp left


def test_save_load_bpe(tmp_path: Path, bpe: BPETokenizer) -> None:
    path = tmp_path / "tokenizer.json"
    save_tokenizer(bpe, path)
    save_tokenizer(bpe, path)  # overwriting is fine
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and data["kind"] == "bpe"
    assert isinstance(data["hf_tokenizer"], str)
    tok = load_tokenizer(path)
    assert isinstance(tok, BPETokenizer)
    assert tok == bpe
    assert tok.vocab_size == bpe.vocab_size
    assert np.array_equal(tok.encode(CODE), bpe.encode(CODE))
    assert tok.decode(tok.encode(CODE)) == CODE
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"schema_version": 1, "kind": "sentencepiece"}',
         "unknown tokenizer kind 'sentencepiece'.*char, bpe"),
        ('{"schema_version": 2, "kind": "char"}', "schema_version 2"),
        ('{"kind": "char"}', "schema_version None"),
        ('{"schema_version": 1, "kind": "bpe"}', "hf_tokenizer"),
        ('{"schema_version": 1, "kind": "bpe", "hf_tokenizer": "{}"}', "cannot be read"),
        ('{"schema_version": 1, "kind": "char", "vocab_size": 50}', "vocab_size 50"),
    ],
)
def test_load_errors_are_user_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tok.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as info:
        load_tokenizer(path)
    assert str(path) in str(info.value)


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(UserError, match="not found") as info:
        load_tokenizer(path)
    assert str(path) in str(info.value)
