import dataclasses
import math
import re
import threading

import pytest
import torch

from engine.config import ModelConfig
from engine.errors import UserError
from engine.model import GPT, abs_topk
from engine.sites import NodeId, all_sites, intervene, parse_site, site_width


def _model(cfg: ModelConfig, seed: int = 0) -> GPT:
    m = GPT(cfg)
    m.reset_parameters(seed=seed)
    with torch.no_grad():  # non-trivial sinks, bigram and norm gains so every path is exercised
        for blk in m.blocks:
            blk.attn.sink.uniform_(-1, 1)
        m.bigram.normal_(0, 0.1)
    return m.eval()


def test_shapes(micro_model_cfg):
    m = _model(micro_model_cfg)
    idx = torch.randint(0, micro_model_cfg.vocab_size, (3, 16))
    logits, loss = m(idx, idx)
    assert logits.shape == (3, 16, micro_model_cfg.vocab_size)
    assert loss.ndim == 0 and math.isfinite(loss.item())


def test_causal(micro_model_cfg):
    m = _model(micro_model_cfg)
    idx = torch.randint(0, micro_model_cfg.vocab_size, (2, 16))
    changed = idx.clone()
    changed[:, 9] = (changed[:, 9] + 1) % micro_model_cfg.vocab_size
    a, b = m(idx), m(changed)
    assert torch.allclose(a[:, :9], b[:, :9], atol=1e-6)
    assert not torch.allclose(a[:, 9:], b[:, 9:], atol=1e-4)


def test_run_from_every_boundary_matches_full_forward(micro_model_cfg):
    m = _model(micro_model_cfg)
    idx = torch.randint(0, micro_model_cfg.vocab_size, (2, 16))
    logits, cache = m.forward_with_cache(idx)
    assert len(cache) == 2 * micro_model_cfg.n_layer + 1
    for h in range(len(cache)):
        assert torch.allclose(m.run_from(h, cache[h], idx), logits, atol=1e-6)
    assert torch.allclose(m.run_from(1, cache[1], idx, stop=3), cache[3], atol=1e-6)


def test_attention_sink_matches_formula():
    cfg = ModelConfig(vocab_size=10, n_layer=1, d_model=16, d_mlp=16, n_ctx=5)
    attn = GPT(cfg).blocks[0].attn
    with torch.no_grad():
        attn.sink.fill_(1.5)
    q, k, v = torch.randn(3, 1, 5, 16).unbind(0)
    y = attn.mix(q, k, v)
    s = (q[0] @ k[0].T) / 4.0
    s = s.masked_fill(~torch.ones(5, 5, dtype=torch.bool).tril(), float("-inf"))
    p = s.exp() / (s.exp().sum(-1, keepdim=True) + math.exp(1.5))
    assert torch.allclose(y[0], p @ v[0], atol=1e-5)


def test_alibi_matches_formula():
    """Head h adds -m_h * (i - j) to the logit of key j at query i; the sink slot gets no penalty."""
    cfg = ModelConfig(vocab_size=10, n_layer=1, d_model=32, d_mlp=16, n_ctx=6, alibi_heads=2)
    attn = GPT(cfg).blocks[0].attn
    assert torch.allclose(attn.slopes, torch.tensor([2.0 ** -4, 2.0 ** -8]))
    with torch.no_grad():
        attn.sink.copy_(torch.tensor([0.3, -0.8]))
    q, k, v = torch.randn(3, 1, 6, 32).unbind(0)
    y = attn.mix(q, k, v)
    T = 6
    dist = (torch.arange(T).view(T, 1) - torch.arange(T).view(1, T)).float()
    for h in range(2):
        c = slice(16 * h, 16 * (h + 1))
        s = (q[0, :, c] @ k[0, :, c].T) / 4.0 - attn.slopes[h] * dist
        s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        p = s.exp() / (s.exp().sum(-1, keepdim=True) + math.exp(attn.sink[h].item()))
        assert torch.allclose(y[0, :, c], p @ v[0, :, c], atol=1e-5)
    assert attn.distance_bias(4)[0, 3, 1] == -attn.slopes[0] * 2
    half = GPT(ModelConfig(d_model=128, alibi_heads=4)).blocks[0].attn.slopes
    assert half.tolist() == [2.0 ** -2, 2.0 ** -4, 2.0 ** -6, 2.0 ** -8, 0, 0, 0, 0]  # the other heads: NoPE
    with pytest.raises(UserError, match="alibi_heads must be in 0..8"):
        ModelConfig(alibi_heads=9).validate()


def test_alibi_from_layer_keeps_earlier_layers_position_free():
    m = GPT(ModelConfig(d_model=128, n_layer=3, alibi_heads=8, alibi_from_layer=1))
    assert [b.attn.alibi for b in m.blocks] == [False, True, True]
    assert not m.blocks[0].attn.slopes.any() and m.blocks[0].attn._fused_bias is None
    assert m.blocks[2].attn.slopes[0] == 0.5
    with pytest.raises(UserError, match="alibi_from_layer must be in 0..2"):
        ModelConfig(n_layer=3, alibi_heads=8, alibi_from_layer=3).validate()


def test_alibi_model_runs_from_every_boundary(micro_model_cfg):
    m = _model(dataclasses.replace(micro_model_cfg, alibi_heads=1))
    idx = torch.randint(0, micro_model_cfg.vocab_size, (2, 16))
    logits, cache = m.forward_with_cache(idx)
    for h in range(len(cache)):
        assert torch.allclose(m.run_from(h, cache[h], idx), logits, atol=1e-6)
    plain = _model(micro_model_cfg)
    plain.load_state_dict(m.state_dict())
    assert not torch.allclose(plain(idx), logits, atol=1e-3)  # the bias changes the function


def test_no_sink_and_no_bigram():
    cfg = ModelConfig(vocab_size=10, n_layer=1, d_model=16, d_mlp=16, n_ctx=8, attn_sink=False, bigram_table=False)
    m = GPT(cfg)
    assert m.bigram is None and m.blocks[0].attn.sink is None
    assert m(torch.zeros(1, 8, dtype=torch.long)).shape == (1, 8, 10)


def test_position_channels_are_read_only():
    cfg = ModelConfig(vocab_size=10, n_layer=2, d_model=16, d_mlp=16, n_ctx=8, pos_channels=4)
    m = _model(cfg)
    with torch.no_grad():
        m.wpe.normal_()
    idx = torch.randint(0, 10, (2, 8))
    _, cache = m.forward_with_cache(idx)
    assert cache[0].shape == (2, 8, 20)
    for x in cache[1:]:
        assert torch.equal(x[..., 16:], cache[0][..., 16:])
    assert not torch.equal(cache[0][0, 0, 16:], cache[0][0, 1, 16:])


def test_abs_topk_keeps_k_largest_and_routes_gradient():
    x = torch.randn(4, 7, 40, requires_grad=True)
    y = abs_topk(x, 10)
    assert ((y != 0).sum(-1) == 10).all()
    kept = y != 0
    assert (x.abs()[kept].view(4, 7, 10).min(-1).values >= x.abs().masked_fill(kept, 0).max(-1).values).all()
    y.sum().backward()
    assert torch.equal(x.grad, kept.float())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_abs_topk_integer_key_matches_sorting(dtype):
    """The integer view of |x| used for speed selects exactly the k largest |x| (negative zero,
    subnormals and huge values included)."""
    g = torch.Generator().manual_seed(0)
    mags = torch.stack([torch.randperm(96, generator=g) + 1.0 for _ in range(64)])  # distinct per row
    signs = torch.where(torch.rand(64, 96, generator=g) < 0.5, -1.0, 1.0)
    tiny = {torch.float16: 6e-8, torch.bfloat16: 1e-39, torch.float32: 1e-40, torch.float64: 1e-310}[dtype]
    x = (mags * signs).to(dtype)
    x[:, :3] = torch.tensor([-0.0, 0.0, tiny], dtype=torch.float64).to(dtype)  # ties only at zero
    for k in (1, 17, 90):
        y = abs_topk(x, k)
        kth = x.abs().sort(-1, descending=True).values[:, k - 1:k]
        assert ((y != 0) == (x.abs() >= kth)).all()
        assert torch.equal(y[y != 0], x[y != 0])


def test_abstopk_applies_at_all_eight_sites(micro_model_cfg):
    m = _model(micro_model_cfg)
    seen = {}
    hooks = {s: (lambda name: (lambda t: seen.__setitem__(name, t) or t))(s) for s in all_sites(micro_model_cfg)}
    with intervene(hooks):
        m(torch.randint(0, 50, (2, 16)))
    assert set(seen) == set(all_sites(micro_model_cfg))
    for site, t in seen.items():
        width = site_width(micro_model_cfg, site)
        assert t.shape[-1] == width
        assert ((t != 0).sum(-1) <= round(0.25 * width)).all(), site


def test_intervention_is_scoped_and_thread_local(micro_model_cfg):
    m = _model(micro_model_cfg)
    idx = torch.randint(0, 50, (2, 16))
    clean = m(idx)
    zero = {"blocks.0.mlp.neuron": lambda t: torch.zeros_like(t)}
    with intervene(zero):
        ablated = m(idx)
        other = {}
        th = threading.Thread(target=lambda: other.setdefault("out", m(idx)))
        th.start()
        th.join()
    assert not torch.allclose(ablated, clean)
    assert torch.allclose(other["out"], clean)  # the other thread saw no hooks
    assert torch.allclose(m(idx), clean)  # restored afterwards


def test_nested_interventions_compose(micro_model_cfg):
    m = _model(micro_model_cfg)
    calls = []
    with intervene({"blocks.1.attn.v": lambda t: calls.append("outer") or t}):
        with intervene({"blocks.1.attn.v": lambda t: calls.append("inner") or t}):
            m(torch.zeros(1, 4, dtype=torch.long))
    assert calls == ["outer", "inner"]


def test_site_names_and_node_ids(micro_model_cfg):
    sites = all_sites(micro_model_cfg)
    assert len(sites) == 16 and sites[0] == "blocks.0.attn.read" and sites[-1] == "blocks.1.mlp.write"
    assert parse_site("blocks.1.attn.v") == (1, "attn.v")
    with pytest.raises(UserError, match="unknown site"):
        parse_site("blocks.1.attn.z")
    assert str(NodeId.parse("blocks.0.mlp.neuron:12")) == "blocks.0.mlp.neuron:12"
    with pytest.raises(UserError, match="0..63"):
        NodeId.parse("blocks.0.mlp.neuron:64").validate(micro_model_cfg)
    with pytest.raises(UserError, match="layer 5 out of range"):
        NodeId.parse("blocks.5.mlp.neuron:1").validate(micro_model_cfg)


@pytest.mark.parametrize("alibi", [0, 1, 2])
@pytest.mark.parametrize("sink", [True, False])
def test_fused_attention_matches_reference_values_and_gradients(sink, alibi):
    cfg = ModelConfig(vocab_size=10, n_layer=1, d_model=32, d_mlp=16, n_ctx=12, attn_sink=sink, alibi_heads=alibi)
    attn = GPT(cfg).blocks[0].attn
    if sink:
        with torch.no_grad():
            attn.sink.copy_(torch.tensor([0.7, -1.2]))
    q, k, v = (torch.randn(3, 12, 32, requires_grad=True) for _ in range(3))
    g = torch.randn(3, 12, 32)
    params = [q, k, v] + ([attn.sink] if sink else [])
    fast = attn.mix(q, k, v)
    ref = attn.mix_reference(q, k, v)
    assert torch.allclose(fast, ref, atol=1e-5)
    for a, b in zip(torch.autograd.grad(fast, params, g), torch.autograd.grad(ref, params, g)):
        assert torch.allclose(a, b, atol=1e-4)


def test_bigram_gradient_is_repeatable_on_the_cpu():
    """The bigram table's gradient is bit-identical from run to run (exact resume depends on it): an
    indexing backward (``bigram[idx]``) accumulates with thread-order atomic adds and is not."""
    torch.manual_seed(0)
    m = GPT(ModelConfig(vocab_size=97, n_layer=1, d_model=32, d_mlp=16, n_ctx=128))
    with torch.no_grad():
        m.bigram.normal_()
    idx = torch.randint(0, 97, (64, 128))
    g = torch.randn(64, 128, 97)

    def grad():
        m.zero_grad(set_to_none=True)
        (m.unembed(torch.zeros(64, 128, m.cfg.d_resid), idx) * g).sum().backward()
        return m.bigram.grad.clone()

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the old indexing backward raced only with more than one thread
    try:
        first = grad()
        assert all(torch.equal(first, grad()) for _ in range(10))
    finally:
        torch.set_num_threads(threads)


# -- options of other weight-sparse GPTs (OpenAI's released models) ---------------------------------


def test_norms_match_torchs_own():
    from engine.model import Norm

    x = torch.randn(3, 5, 12)
    ln = Norm(12, "t", eps=1e-5, kind="layer", bias=True)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-1, 1)
    torch.testing.assert_close(ln(x), torch.nn.functional.layer_norm(x, (12,), ln.weight, ln.bias, eps=1e-5))
    eps = torch.finfo(torch.float32).eps
    rms = Norm(12, "t", eps=eps)
    torch.testing.assert_close(rms(x), torch.nn.functional.rms_norm(x, (12,), rms.weight, eps=eps))


def test_default_abstopk_sizes_are_todays():
    """The defaults keep every existing run bit-identical: k = max(1, round(afrac * width)) at the 8
    node sites, none on the residual."""
    from engine.model import topk_sizes
    from engine.sites import SITE_KINDS, site_width

    cfg = ModelConfig(afrac=0.3)
    k = topk_sizes(cfg)
    assert {s: k[s] for s in SITE_KINDS} == {s: max(1, round(0.3 * site_width(cfg, f"blocks.0.{s}"))) for s in SITE_KINDS}
    assert k["resid_post_attn"] is None and k["resid_post_mlp"] is None
    floor = topk_sizes(ModelConfig(afrac=0.35, d_mlp=48, afrac_floor=True, afrac_sites=("mlp.neuron",)))
    assert floor["mlp.neuron"] == 16 and floor["attn.read"] is None  # int(0.35 * 48) = 16, not round() = 17


def test_tied_embeddings_are_one_tensor_stored_once(tmp_path):
    from engine.checkpoint import load_tensors, load_weights_into, save_model

    cfg = ModelConfig(vocab_size=30, d_model=32, d_mlp=64, n_ctx=16, tied_embed=True, pos_additive=True)
    m = GPT(cfg)
    m.reset_parameters(seed=1)
    assert m.lm_head.weight is m.wte.weight
    path = save_model(tmp_path, m)
    stored = load_tensors(path)
    assert "lm_head.weight" not in stored and "wpe_add" in stored
    idx = torch.randint(0, 30, (2, 10))
    for assign in (False, True):  # copied into the parameters, or the file's tensors made them
        again = GPT.empty(cfg) if assign else GPT(cfg)
        load_weights_into(again, stored, path, assign=assign)
        assert again.lm_head.weight is again.wte.weight
        assert (again.wte.weight.data_ptr() == stored["wte.weight"].data_ptr()) == assign
        torch.testing.assert_close(again(idx), m(idx))


@pytest.mark.parametrize("overrides,match", [
    (dict(norm="batch"), "model.norm must be one of rms, layer"),
    (dict(norm_bias=True), "norm_bias needs model.norm='layer'"),
    (dict(afrac_sites=("attn.x",)), "unknown site(s) attn.x"),
    (dict(pos_additive=True, pos_channels=4), "exclude each other"),
    (dict(pos_norm="separate"), "needs pos_channels > 0"),
    (dict(tied_embed=True, pos_channels=4), "tied_embed needs"),
    (dict(mlp_act="tanh"), "model.mlp_act must be one of gelu, relu"),
])
def test_model_options_are_validated(overrides, match):
    from engine.errors import UserError

    with pytest.raises(UserError, match=re.escape(match)):
        ModelConfig(**overrides).validate()


def test_heads_need_not_fill_d_model():
    cfg = ModelConfig(vocab_size=30, d_model=32, d_head=16, heads=3, d_mlp=64, n_ctx=16, linear_bias=False)
    m = GPT(cfg)
    assert cfg.n_head == 3 and m.blocks[0].attn.c_attn.weight.shape == (3 * 48, 32)
    assert m.blocks[0].attn.c_attn.bias is None and m.blocks[0].attn.c_proj.weight.shape == (32, 48)
    assert m(torch.randint(0, 30, (1, 8))).shape == (1, 8, 30)


def test_a_model_on_the_meta_device_has_the_real_shapes_and_imports_no_dynamo():
    """GPT.empty and model_bytes build the model on the meta device: same parameter and buffer shapes
    as a real one, and no random init or tril there (on the meta device those import torch._dynamo,
    1-1.5 s of every run's load). Checked in a fresh interpreter."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from engine.config import ModelConfig\n"
        "from engine.model import GPT, model_bytes\n"
        "for cfg in (ModelConfig(n_layer=2), ModelConfig(n_layer=2, alibi_heads=2, attn_sink=False)):\n"
        "    with torch.device('meta'):\n"
        "        meta = GPT(cfg)\n"
        "    n, nbytes = model_bytes(cfg)\n"
        "    assert 'torch._dynamo' not in sys.modules\n"
        "    real = GPT(cfg)\n"
        "    shapes = lambda m: {k: (tuple(v.shape), v.dtype) for k, v in [*m.named_parameters(), *m.named_buffers()]}\n"
        "    assert shapes(meta) == shapes(real)\n"
        "    assert n == sum(p.numel() for p in real.parameters())\n"
        "    assert nbytes == 4 * n + sum(b.numel() * b.element_size() for b in real.buffers())\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("tied", [False, True])
def test_an_empty_model_has_real_storage_for_everything_and_loads_like_a_built_one(tied):
    """GPT.empty (built on the meta device, then given storage tensor by tensor): the same names,
    shapes, dtypes and requires_grad as a model built normally, nothing left on the meta device, the
    embedding tied where the config ties it, the buffers computed, and after loading a model's state
    the same logits."""
    cfg = ModelConfig(n_layer=2, tied_embed=tied, alibi_heads=2)
    real = GPT(cfg)
    empty = GPT.empty(cfg)
    tensors = lambda m: {k: (tuple(v.shape), v.dtype, v.requires_grad, v.device.type)  # noqa: E731
                         for k, v in [*m.named_parameters(), *m.named_buffers()]}
    assert tensors(empty) == tensors(real)
    assert all(t.device.type == "cpu" for t in [*empty.parameters(), *empty.buffers()])
    assert (empty.lm_head.weight is empty.wte.weight) == tied
    for (name, b), (_, rb) in zip(empty.named_buffers(), real.named_buffers()):
        assert torch.equal(b, rb), name
    empty.load_state_dict(real.state_dict())
    idx = torch.randint(0, cfg.vocab_size, (2, 9))
    assert torch.equal(empty(idx), real(idx))
