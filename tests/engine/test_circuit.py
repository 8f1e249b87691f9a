import numpy as np
import pytest
import torch

from engine.circuits.circuit import load_circuit, make_circuit, weight_edges
from engine.config import ModelConfig
from engine.errors import UserError
from engine.model import GPT
from engine.sites import NodeId


def pattern_model() -> GPT:
    cfg = ModelConfig(vocab_size=5, n_layer=1, d_model=16, d_mlp=8, n_ctx=4)
    m = GPT(cfg)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2:
                p.zero_()
        a = m.blocks[0].attn
        a.c_attn.weight[2, 1] = 0.5       # read 1 -> q 2
        a.c_attn.weight[16 + 3, 1] = -1.0  # read 1 -> k 3
        a.c_attn.weight[32 + 4, 0] = 2.0   # read 0 -> v 4
        a.c_proj.weight[9, 4] = 1.5        # v 4 -> attn write 9
        mlp = m.blocks[0].mlp
        mlp.c_fc.weight[6, 9] = 0.25       # mlp read 9 -> neuron 6
        mlp.c_fc.weight[7, 2] = 0.75       # mlp read 2 -> neuron 7
        mlp.c_proj.weight[0, 6] = -0.5     # neuron 6 -> mlp write 0
    return m


def test_all_weight_edges_of_a_hand_built_pattern():
    es = weight_edges(pattern_model())
    got = {(a, b, round(float(w), 3)) for a, b, w in zip(es.src, es.dst, es.weight)}
    assert got == {
        ("blocks.0.attn.read:1", "blocks.0.attn.q:2", 0.5), ("blocks.0.attn.read:1", "blocks.0.attn.k:3", -1.0),
        ("blocks.0.attn.read:0", "blocks.0.attn.v:4", 2.0), ("blocks.0.attn.v:4", "blocks.0.attn.write:9", 1.5),
        ("blocks.0.mlp.read:9", "blocks.0.mlp.neuron:6", 0.25), ("blocks.0.mlp.read:2", "blocks.0.mlp.neuron:7", 0.75),
        ("blocks.0.mlp.neuron:6", "blocks.0.mlp.write:0", -0.5)}


def test_circuit_counts_only_edges_with_both_ends_kept():
    m = pattern_model()
    nodes = [NodeId.parse(s) for s in ("blocks.0.attn.read:0", "blocks.0.attn.v:4", "blocks.0.mlp.neuron:6",
                                         "blocks.0.mlp.write:0", "blocks.0.attn.q:2")]
    c = make_circuit(m, "t", nodes, "hash")
    assert c.n_edges == 2  # read0->v4, neuron6->write0 (q2's source read1 is not kept)
    assert c.nodes_per_site()["blocks.0.attn.v"] == 1
    g = c.to_graph()
    assert g.number_of_nodes() == 5
    assert g.has_edge("blocks.0.attn.read:0", "blocks.0.attn.v:4")


def test_bad_circuit_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_circuit(bad)
    bad.write_text('{"kind": "something"}')
    with pytest.raises(UserError, match="not a circuit file"):
        load_circuit(bad)
    m = pattern_model()
    c = make_circuit(m, "t", [NodeId("blocks.0.mlp.neuron", 7)], "hash")
    p = c.save(tmp_path / "c.json")
    small = GPT(ModelConfig(vocab_size=5, n_layer=1, d_model=16, d_mlp=4, n_ctx=4))
    with pytest.raises(UserError, match="another model"):
        load_circuit(p, small)
