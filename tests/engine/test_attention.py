"""engine.mechanism.attention: attention patterns known exactly on hand-built models, following
ablations, and the demo's quote head through the CLI."""

import copy
import json
import math

import numpy as np
import pytest
import torch

from engine.ablation.ablator import Ablator
from engine.errors import UserError
from engine.mechanism.attention import head_attention, prompt_attention
from engine.sites import NodeId

from tests.engine.test_ablation import random_enc, random_means, sparse_model


def _uniform_expected(lengths, sink_logit):
    """Scores all 0: each visible position gets 1 / (T + e^b), the sink e^b / (T + e^b)."""
    return [(1.0 / (n + math.exp(sink_logit)), math.exp(sink_logit) / (n + math.exp(sink_logit))) for n in lengths]


def test_zero_queries_give_the_uniform_pattern_and_the_sink_its_exact_share():
    m = sparse_model(afrac=1.0)
    layer, head = 1, 0
    inner = m.cfg.n_head * m.cfg.d_head
    with torch.no_grad():
        m.blocks[layer].attn.c_attn.weight[:inner] = 0.0  # every query is its bias
        m.blocks[layer].attn.c_attn.bias[:inner] = 0.0
        m.blocks[layer].attn.sink[head] = 0.7
    enc = random_enc(n_pairs=5)
    ab = Ablator(m, enc, random_means(m))
    weights, sink = head_attention(ab, layer, head)
    for i, (w_pos, w_sink) in enumerate(_uniform_expected(enc.lengths, 0.7)):
        n = int(enc.lengths[i])
        np.testing.assert_allclose(weights[i, :n], w_pos, atol=1e-6)
        assert np.all(weights[i, n:] == 0)  # after the prompt's end
        assert sink[i] == pytest.approx(w_sink, abs=1e-6)


def test_ablating_a_heads_keys_moves_its_attention_and_nothing_else_changes_the_model():
    m = sparse_model(afrac=1.0)
    layer, head = 1, 1
    dh = m.cfg.d_head
    with torch.no_grad():
        m.blocks[layer].attn.sink[head] = -0.3
    enc = random_enc(n_pairs=5)
    ab = Ablator(m, enc, random_means(m))
    before, _ = head_attention(ab, layer, head)
    keys = [NodeId(f"blocks.{layer}.attn.k", head * dh + j) for j in range(dh)]
    after, sink = head_attention(ab, layer, head, nodes=keys, mode="zero")  # zero keys: every score is 0
    assert np.abs(after - before).max() > 1e-3  # the pattern moved
    for i, (w_pos, w_sink) in enumerate(_uniform_expected(enc.lengths, -0.3)):
        np.testing.assert_allclose(after[i, : int(enc.lengths[i])], w_pos, atol=1e-6)
        assert sink[i] == pytest.approx(w_sink, abs=1e-6)
    again, _ = head_attention(ab, layer, head)  # ablations are per call
    np.testing.assert_array_equal(again, before)


def test_prompt_records_and_bad_heads():
    m = sparse_model(afrac=1.0)
    enc = random_enc(n_pairs=3)
    enc.pair_index, enc.side = np.repeat(np.arange(3), 2), np.tile([0, 1], 3)
    ab = Ablator(m, enc, random_means(m))
    recs = prompt_attention(ab, enc, None, 0, 1)
    assert [(r.pair, r.side) for r in recs] == [(0, "A"), (0, "B"), (1, "A"), (1, "B"), (2, "A"), (2, "B")]
    for r, n in zip(recs, enc.lengths):
        assert len(r.tokens) == len(r.weights) == n
        assert sum(r.weights) + r.sink == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(UserError, match="--head 99 is out of range"):
        head_attention(ab, 0, 99)
    with pytest.raises(UserError, match="--layer 7 is out of range"):
        head_attention(ab, 7, 0)


def test_the_demos_quote_head_attends_to_the_opening_quote(capsys):
    """Issue 18's check: layer 1 head 6 of the demo looks at the opening quote from the last position."""
    from engine.cli.main import main

    assert main(["attention", "demo", "--task", "single_double_quote", "--layer", "1", "--head", "6",
                 "--pairs", "6", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["prompts_count"] == 12 and {p["side"] for p in r["prompts"]} == {"A", "B"}
    for p in r["prompts"]:
        assert len(p["tokens"]) == len(p["weights"])
        top = int(np.argmax(p["weights"]))
        assert p["tokens"][top] in ("'", '"') and p["weights"][top] > 0.5
    assert main(["attention", "demo", "--task", "single_double_quote", "--layer", "1", "--head", "6",
                 "--baseline", "circuit"]) == 2
    assert capsys.readouterr().err.startswith("error: --baseline circuit needs --circuit")


def test_an_ablated_weight_counts_as_if_it_were_zero_and_is_restored():
    from engine.ablation.ablator import Edge, _weight_entry
    from engine.circuits.circuit import weight_edges

    m = sparse_model(afrac=1.0)
    layer, head = 1, 1
    dh = m.cfg.d_head
    ab = Ablator(m, random_enc(n_pairs=4), random_means(m))
    es = weight_edges(ab.model)
    into_keys = [i for i in range(len(es)) if es.dst[i].startswith(f"blocks.{layer}.attn.k:")
                 and head * dh <= int(es.dst[i].split(":")[1]) < (head + 1) * dh]
    edge = Edge(NodeId.parse(es.src[into_keys[0]]), NodeId.parse(es.dst[into_keys[0]]))
    base, _ = head_attention(ab, layer, head)
    cut, _ = head_attention(ab, layer, head, edges=[str(edge)])
    cut_by_hand = copy.deepcopy(m)
    lin, r, c = _weight_entry(cut_by_hand, edge)
    with torch.no_grad():
        lin.weight[r, c] = 0.0
    by_hand, _ = head_attention(Ablator(cut_by_hand, random_enc(n_pairs=4), random_means(m)), layer, head)
    np.testing.assert_array_equal(cut, by_hand)
    np.testing.assert_array_equal(base, head_attention(ab, layer, head)[0])  # and the weight is back
    assert np.abs(cut - base).max() > 0
    np.testing.assert_array_equal(head_attention(ab, layer, head)[0], base)  # the weight is back
