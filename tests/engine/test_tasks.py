"""Tests for binary contrast tasks (engine.tasks.lookup): built-ins, task files, encoding, metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.data import idioms
from engine.config import ModelConfig
from engine.errors import UserError
from engine.model import GPT
from engine.tasks.lookup import (
    BUILTIN_TASKS,
    DIFFERENT_LAST_CHAR,
    MAX_PROMPT_CHARS,
    SPLITS,
    EncodedTask,
    TaskPair,
    encode_task,
    get_task,
    last_logits,
    list_tasks,
    load_task_file,
    resolve_task,
    task_metrics,
)
from engine.data.tokenizer import BPETokenizer, CharTokenizer, single_token_id

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "resources" / "tasks"

REQUIRED = (
    "single_double_quote", "bracket_counting", "set_or_string", "set_or_string_fixedvarname",
    "bracket_brace", "if_equals", "for_while", "else_elif", "fstring_brace", "if_ternary",
    "var_swap", "lambda_func", "with_as", "with_open", "enumerate_range", "class_init",
    "final_kwarg", "indent_for",
)
N = 120


@pytest.fixture(scope="module")
def char_tok() -> CharTokenizer:
    return CharTokenizer()


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.train([idioms.generate_snippets(0, 200_000)], vocab_size=1024)


@pytest.fixture(scope="module")
def tiny_model() -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=97, n_layer=1, d_model=32, d_mlp=64, n_ctx=128))


@pytest.fixture(scope="module")
def all_pairs() -> dict[tuple[str, str], list[TaskPair]]:
    return {(t.name, s): t.pairs(s, N, seed=0) for t in list_tasks() for s in SPLITS}


def _pairs(n: int = 8) -> list[TaskPair]:
    return [TaskPair(f'v{i} = "word{i}', '"', f"v{i} = 'word{i}", "'") for i in range(n)]


# ---------------------------------------------------------------- registry


def test_registry_has_required_tasks() -> None:
    assert len(BUILTIN_TASKS) >= 14
    for name in REQUIRED:
        assert name in BUILTIN_TASKS
        assert get_task(name).name == name
        assert get_task(name).source == "builtin"
        assert get_task(name).description
    assert [t.name for t in list_tasks()] == list(BUILTIN_TASKS)
    assert set(DIFFERENT_LAST_CHAR) <= set(BUILTIN_TASKS)


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(UserError) as e:
        get_task("no_such_task")
    assert "single_double_quote" in str(e.value) and "bracket_counting" in str(e.value)


def test_resolve_task(tmp_path: Path) -> None:
    assert resolve_task("var_swap", None) is BUILTIN_TASKS["var_swap"]
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"name": "mine", "pairs": [p.__dict__ for p in _pairs()]}))
    assert resolve_task(None, f).name == "mine"
    with pytest.raises(UserError, match="not both"):
        resolve_task("var_swap", f)
    with pytest.raises(UserError, match="no task given"):
        resolve_task(None, None)


def test_bad_split_and_n() -> None:
    t = get_task("var_swap")
    with pytest.raises(UserError, match="split"):
        t.pairs("test", 3)
    with pytest.raises(UserError):
        t.pairs("train", -1)
    assert t.pairs("train", 0) == []


# ---------------------------------------------------------------- built-in pairs


@pytest.mark.parametrize("name", REQUIRED)
def test_builtin_pairs_well_formed(name: str, all_pairs, char_tok: CharTokenizer) -> None:
    train, val = all_pairs[(name, "train")], all_pairs[(name, "val")]
    for split, ps in (("train", train), ("val", val)):
        assert len(ps) == N and len(set(ps)) == N, (name, split)
        for p in ps:
            for prompt in (p.prompt_a, p.prompt_b):
                assert 0 < len(prompt) <= MAX_PROMPT_CHARS, prompt
                assert all(ch == "\n" or 32 <= ord(ch) < 127 for ch in prompt), prompt
                for line in prompt.split("\n"):
                    assert (len(line) - len(line.lstrip(" "))) % 4 == 0 or not line.strip(), prompt
            for t in (p.target_a, p.target_b):
                assert len(t) == 1 and single_token_id(char_tok, t) is not None, (name, t)
            assert p.target_a != p.target_b
            if name not in DIFFERENT_LAST_CHAR:
                assert p.prompt_a[-1] == p.prompt_b[-1], (name, p)
    # train and val are disjoint
    assert not set(train) & set(val)


def test_builtin_pairs_end_on_same_char_for_every_task(all_pairs) -> None:
    for t in list_tasks():
        if t.name in DIFFERENT_LAST_CHAR:
            continue
        for s in SPLITS:
            assert all(p.prompt_a[-1] == p.prompt_b[-1] for p in all_pairs[(t.name, s)]), t.name


def test_builtin_pairs_deterministic_per_seed() -> None:
    for t in list_tasks():
        a = t.pairs("train", 20, seed=3)
        assert a == t.pairs("train", 20, seed=3)
        assert a != t.pairs("train", 20, seed=4)
        assert t.example() == t.pairs("val", 1, seed=0)[0]


def test_builtin_pairs_vary_both_targets(all_pairs) -> None:
    """Both sides occur, so a constant answer scores 50%."""
    for t in list_tasks():
        ps = all_pairs[(t.name, "train")]
        assert len({p.prompt_a for p in ps}) > N // 2, t.name
        assert len({p.prompt_a[-1] for p in ps}) >= 1


def test_val_uses_held_out_identifiers() -> None:
    """A name drawn for a val pair never shows up as the varying name of a train pair."""
    train = get_task("set_or_string").pairs("train", 300)
    val = get_task("set_or_string").pairs("val", 300)
    acc_train = {p.prompt_a.split("\n")[-1].strip() for p in train}
    acc_val = {p.prompt_a.split("\n")[-1].strip() for p in val}
    assert acc_train and acc_val and not acc_train & acc_val


# ---------------------------------------------------------------- encoding


def test_encode_task_shapes_and_interleaving(char_tok: CharTokenizer) -> None:
    ps = get_task("bracket_counting").pairs("train", 10)
    enc = encode_task(char_tok, ps, n_ctx=128, task_name="bracket_counting")
    N2 = 2 * len(ps)
    T = max(max(len(p.prompt_a), len(p.prompt_b)) for p in ps)
    assert enc.tokens.shape == (N2, T) and enc.tokens.dtype == np.int64
    for arr in (enc.lengths, enc.target, enc.foil, enc.pair_index, enc.side):
        assert arr.shape == (N2,) and arr.dtype == np.int64
    assert enc.pairs == tuple(ps) and enc.n == N2
    assert (enc.pair_index == np.repeat(np.arange(len(ps)), 2)).all()
    assert (enc.side == np.tile([0, 1], len(ps))).all()
    assert (enc.target[0::2] == enc.foil[1::2]).all() and (enc.target[1::2] == enc.foil[0::2]).all()
    for i, p in enumerate(ps):
        a, b = enc.tokens[2 * i], enc.tokens[2 * i + 1]
        assert char_tok.decode(a[: enc.lengths[2 * i]]) == p.prompt_a
        assert char_tok.decode(b[: enc.lengths[2 * i + 1]]) == p.prompt_b
        assert (a[enc.lengths[2 * i]:] == 0).all()
        assert enc.target[2 * i] == single_token_id(char_tok, p.target_a)
        assert enc.target[2 * i + 1] == single_token_id(char_tok, p.target_b)


def test_encode_every_builtin_task_under_char(char_tok: CharTokenizer, all_pairs) -> None:
    for t in list_tasks():
        enc = encode_task(char_tok, all_pairs[(t.name, "val")], n_ctx=128, task_name=t.name)
        assert enc.n == 2 * N


def test_encode_truncates_to_last_n_ctx_tokens(char_tok: CharTokenizer) -> None:
    p = TaskPair("abcdefghij", "x", "0123456789", "y")
    enc = encode_task(char_tok, [p], n_ctx=4)
    assert enc.tokens.shape == (2, 4)
    assert char_tok.decode(enc.tokens[0]) == "ghij" and char_tok.decode(enc.tokens[1]) == "6789"


def test_encode_rejects_multi_token_target(char_tok: CharTokenizer) -> None:
    with pytest.raises(UserError) as e:
        encode_task(char_tok, [TaskPair("x = ", "ab", "y = ", "c")], n_ctx=16, task_name="mytask")
    msg = str(e.value)
    assert "mytask" in msg and "pair 0" in msg and "'ab'" in msg and "['a', 'b']" in msg


def test_bpe_adapts_target_that_merges_with_prompt(bpe: BPETokenizer) -> None:
    assert single_token_id(bpe, '("') is not None and single_token_id(bpe, "('") is not None
    pair = TaskPair('x = 1\nprint(', '"', "x = 1\nprint(", "'")
    enc = encode_task(bpe, [pair], n_ctx=64, task_name="quotes")
    adapted = enc.pairs[0]
    assert adapted == TaskPair("x = 1\nprint", '("', "x = 1\nprint", "('")
    assert enc.target[0] == single_token_id(bpe, '("') and enc.target[1] == single_token_id(bpe, "('")
    assert bpe.decode(enc.tokens[0, : enc.lengths[0]]) == "x = 1\nprint"


def test_bpe_no_adaptation_when_target_is_its_own_token(bpe: BPETokenizer) -> None:
    pair = TaskPair('x = "hello', '"', "x = 'hello", "'")
    enc = encode_task(bpe, [pair], n_ctx=64)
    assert enc.pairs[0] == pair
    assert bpe.decode(enc.tokens[0, : enc.lengths[0]]) == 'x = "hello'


def test_bpe_rejects_target_that_is_several_tokens(bpe: BPETokenizer) -> None:
    with pytest.raises(UserError, match="not a single bpe token"):
        encode_task(bpe, [TaskPair("x = ", "foo bar baz qux", "y = ", "1")], n_ctx=64)


# ---------------------------------------------------------------- metrics


def _toy_enc() -> EncodedTask:
    # two pairs, vocab 4: pair 0 targets (1, 2), pair 1 targets (3, 0)
    return EncodedTask(
        tokens=np.ones((4, 3), dtype=np.int64),
        lengths=np.full(4, 3, dtype=np.int64),
        target=np.array([1, 2, 3, 0]),
        foil=np.array([2, 1, 0, 3]),
        pair_index=np.array([0, 0, 1, 1]),
        side=np.array([0, 1, 0, 1]),
        pairs=(TaskPair("a", "1", "b", "2"), TaskPair("c", "3", "d", "0")),
    )


def test_task_metrics_by_hand() -> None:
    enc = _toy_enc()
    logits = torch.tensor([
        [0.0, 5.0, 5.0, 9.0],  # target 1, foil 2: diff 0 -> loss log 2
        [0.0, 1.0, 3.0, 0.0],  # target 2, foil 1: diff 2
        [1.0, 0.0, 0.0, 0.0],  # target 3, foil 0: diff -1
        [0.0, 0.0, 0.0, 0.0],  # target 0, foil 3: diff 0
    ])
    m = task_metrics(logits, enc)
    per = [math.log(2), math.log1p(math.exp(-2)), math.log1p(math.exp(1)), math.log(2)]
    assert m.loss == pytest.approx(sum(per) / 4, abs=1e-12)
    assert m.accuracy == pytest.approx(0.25)
    assert np.allclose(m.logit_diff, [0, 2, -1, 0])
    assert np.allclose(m.p_correct, [0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.e), 0.5])
    assert m.n == 4
    # mean over sequences, not summed over the pair
    zero = task_metrics(torch.zeros(4, 4), enc)
    assert zero.loss == pytest.approx(math.log(2)) and zero.accuracy == 0.0


def test_task_metrics_perfect_model() -> None:
    enc = _toy_enc()
    logits = torch.zeros(4, 4)
    logits[torch.arange(4), torch.as_tensor(enc.target)] = 50.0
    m = task_metrics(logits, enc)
    assert m.loss < 1e-12 and m.accuracy == 1.0 and (m.p_correct > 0.999).all()


def test_last_logits_gathers_at_last_prompt_token(tiny_model: GPT, char_tok: CharTokenizer) -> None:
    ps = get_task("with_open").pairs("val", 6)
    enc = encode_task(char_tok, ps, n_ctx=128)
    tiny_model.train()
    out = last_logits(tiny_model, enc, batch_size=5)
    assert tiny_model.training  # mode restored
    assert out.shape == (enc.n, 97) and out.dtype == torch.float32
    tiny_model.eval()
    with torch.no_grad():
        for r in (0, 3, enc.n - 1):
            L = int(enc.lengths[r])
            full = tiny_model(torch.as_tensor(enc.tokens[r : r + 1, :L]))[0, -1]
            assert torch.allclose(out[r], full, atol=1e-5)
    m = task_metrics(out, enc)
    assert 0.0 <= m.accuracy <= 1.0 and m.loss > 0


# ---------------------------------------------------------------- task files


def _write(tmp_path: Path, obj, name: str = "task.json") -> Path:
    f = tmp_path / name
    f.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return f


def _pair_dicts(n: int = 8) -> list[dict]:
    return [dict(p.__dict__) for p in _pairs(n)]


def test_task_file_pairs_form(tmp_path: Path) -> None:
    f = _write(tmp_path, {"name": "mine", "description": "d", "pairs": _pair_dicts(12)})
    t = load_task_file(f)
    assert t.name == "mine" and t.description == "d" and t.source == str(f)
    train, val = t.pairs("train", 100), t.pairs("val", 100)
    assert len(train) == 9 and len(val) == 3 and not set(train) & set(val)
    assert set(val) == {_pairs(12)[i] for i in (3, 7, 11)}
    assert t.pairs("train", 4, seed=1) == t.pairs("train", 4, seed=1)
    assert t.example() in val


@pytest.mark.parametrize(
    "obj, match",
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "JSON object"),
        ({"pairs": []}, "missing the field 'name'"),
        ({"name": 3, "pairs": []}, "'name' must be a non-empty string"),
        ({"name": "t", "description": 5, "pairs": []}, "'description' must be a string"),
        ({"name": "t"}, "exactly one of 'pairs'"),
        ({"name": "t", "pairs": "x"}, "'pairs' must be a list"),
        ({"name": "t", "pairs": [{"prompt_a": "a", "target_a": "b", "prompt_b": "c"}]},
         "pair 0 is missing the field 'target_b'"),
        ({"name": "t", "pairs": [{"prompt_a": "a", "target_a": 1, "prompt_b": "c", "target_b": "d"}]},
         "field 'target_a' must be a string"),
        ({"name": "t", "pairs": [{"prompt_a": "", "target_a": "b", "prompt_b": "c", "target_b": "d"}]},
         "empty 'prompt_a'"),
        ({"name": "t", "pairs": [{"prompt_a": "a", "target_a": "b", "prompt_b": "c", "target_b": ""}]},
         "empty 'target_b'"),
        ({"name": "t", "pairs": [{"prompt_a": "a", "target_a": "b", "prompt_b": "c", "target_b": "b"}]},
         "target_a and target_b must differ"),
        ({"name": "t", "pairs": _pair_dicts(7)}, "at least 8"),
        ({"name": "t", "pairs": _pair_dicts(8) + _pair_dicts(1)}, "pair 8 duplicates pair 0"),
        ({"name": "single_double_quote", "pairs": _pair_dicts(8)}, "is a built-in task"),
        ({"name": "t", "pairs": _pair_dicts(8), "extra": 1}, "unknown field"),
        ({"name": "t", "templates": [{"prompt_a": "{x}{y}", "target_a": "a", "prompt_b": "{x}",
                                      "target_b": "b"}], "slots": {"x": ["1", "2"]}},
         r"unknown slot\(s\) \{y\}"),
        ({"name": "t", "templates": [{"prompt_a": "{x!r}", "target_a": "a", "prompt_b": "{x}",
                                      "target_b": "b"}], "slots": {"x": ["1"]}}, "bad slot"),
        ({"name": "t", "templates": [], "slots": {}}, "non-empty list"),
        ({"name": "t", "templates": [{"prompt_a": "{x}", "target_a": "a", "prompt_b": "{x}",
                                      "target_b": "b"}], "slots": {"x": []}}, "non-empty list of strings"),
    ],
)
def test_task_file_validation(tmp_path: Path, obj, match: str) -> None:
    with pytest.raises(UserError, match=match):
        load_task_file(_write(tmp_path, obj))


def test_task_file_missing(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_task_file(tmp_path / "nope.json")


def test_task_file_allows_non_ascii(tmp_path: Path) -> None:
    pairs = [{"prompt_a": f"s{i} = \"caf\u00e9", "target_a": '"', "prompt_b": f"s{i} = 'caf\u00e9",
              "target_b": "'"} for i in range(8)]
    assert load_task_file(_write(tmp_path, {"name": "t", "pairs": pairs})).name == "t"


def test_template_form_expands_cartesian_product(tmp_path: Path) -> None:
    obj = {
        "name": "tmpl",
        "templates": [
            {"prompt_a": "{v} = {{\"{w}\"", "target_a": ":", "prompt_b": "{v} = [\"{w}\"", "target_b": ","},
            {"prompt_a": "f({{'{w}'", "target_a": ":", "prompt_b": "f(['{w}'", "target_b": ","},
        ],
        "slots": {"v": ["x", "y"], "w": ["a", "b", "c"], "unused": ["z"]},
    }
    t = load_task_file(_write(tmp_path, obj))
    everything = t.pairs("train", 100) + t.pairs("val", 100)
    assert len(everything) == 2 * 3 + 3
    expected = [TaskPair(f'{v} = {{"{w}"', ":", f'{v} = ["{w}"', ",") for v in "xy" for w in "abc"]
    expected += [TaskPair(f"f({{'{w}'", ":", f"f(['{w}'", ",") for w in "abc"]
    assert set(everything) == set(expected)
    assert set(t.pairs("val", 100)) == {expected[i] for i in (3, 7)}


def test_template_form_duplicates_and_cap(tmp_path: Path) -> None:
    dup = {"name": "t", "templates": [{"prompt_a": "x{a}", "target_a": "1", "prompt_b": "y{a}",
                                       "target_b": "2"}], "slots": {"a": ["1", "2", "3", "4", "1", "5", "6", "7"]}}
    with pytest.raises(UserError, match="duplicates"):
        load_task_file(_write(tmp_path, dup))
    big = {"name": "t", "templates": [{"prompt_a": "{a}-{b}-{c}", "target_a": "1", "prompt_b": "{a}-{b}-{c}!",
                                       "target_b": "2"}],
           "slots": {k: [str(i) for i in range(20)] for k in "abc"}}
    t = load_task_file(_write(tmp_path, big, "big.json"))
    n = len(t.pairs("train", 10_000)) + len(t.pairs("val", 10_000))
    assert n == 5000


def test_example_task_files_load(char_tok: CharTokenizer) -> None:
    quote = load_task_file(EXAMPLES / "quote_close_example.json")
    assert len(quote.pairs("train", 1000)) + len(quote.pairs("val", 1000)) >= 16
    call = load_task_file(EXAMPLES / "call_or_index_example.json")
    assert len(call.pairs("val", 1000)) >= 8
    for t in (quote, call):
        enc = encode_task(char_tok, t.pairs("val", 50), n_ctx=128, task_name=t.name)
        assert enc.n >= 2
    raw = json.loads((EXAMPLES / "call_or_index_example.json").read_text())
    assert "templates" in raw and "slots" in raw
