"""OpenAI ``circuit_sparsity`` models, as data: their config keys, parameter and hook names, and how
each maps onto ours (../shared/fixtures/openai/FORMAT.md, §1.1, §1.2, §3).

A model folder holds ``beeg_config.json`` (their ``GPTConfig`` as one JSON line) and
``final_model.pt`` (their state dict). :func:`normalize_config` reads the config the way their loader
does (legacy spellings, class defaults) but refuses what we cannot run; :func:`model_config` gives
our :class:`engine.config.ModelConfig`; :func:`tensor_specs` lists every tensor the file must hold,
its shape and our name for it. :func:`openai_config` and :func:`export_names` go the other way.

Imports no torch; knows nothing about files beyond their names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from engine.config import ModelConfig
from engine.errors import UserError

CONFIG_FILE = "beeg_config.json"
WEIGHTS_FILE = "final_model.pt"
TOKENIZER_FILES = ("encoder.json", "vocab.bpe")

FLOAT32_EPS = 2.0 ** -23
"torch.finfo(torch.float32).eps: their RMSNorm's eps (nn.RMSNorm with eps=None)."
LAYERNORM_EPS = 1e-5
"Their LayerNorm's eps."

#: Their GPTConfig fields in declaration order (the order of asdict, so of beeg_config.json), with
#: the class defaults their loader fills in for a missing key.
GPT_CONFIG_DEFAULTS: dict[str, Any] = {
    "block_size": 1024, "vocab_size": 50304, "n_layer": 12, "n_head": 12, "d_head": None, "d_model": 768,
    "dropout": 0.0, "bias": True, "ln_bias": True, "rms_norm": False, "residual_activation_type": "identity",
    "activation_type": "gelu", "afrac": None, "afrac_loctypes": "attn_in,attn_out,mlp_in,mlp_out",
    "debug_nans": False, "tied_unembed": True, "tokenizer_name": "tinypython_2k", "grad_checkpointing": True,
    "d_mlp": None, "enable_bigram_table": False, "learnable_bigram_table": False, "d_pos_emb": None,
    "dropout_cat_pos_emb": False, "sinusoidal_cat_pos_emb": False, "enable_sparse_kernels": False,
    "flash": True, "sink": False,
}

_INT_KEYS = ("block_size", "vocab_size", "n_layer", "n_head", "d_model")
_OPTIONAL_INT_KEYS = ("d_head", "d_mlp", "d_pos_emb")
_BOOL_KEYS = ("bias", "ln_bias", "rms_norm", "debug_nans", "tied_unembed", "grad_checkpointing",
              "enable_bigram_table", "learnable_bigram_table", "dropout_cat_pos_emb", "sinusoidal_cat_pos_emb",
              "enable_sparse_kernels", "flash", "sink")
_STR_KEYS = ("residual_activation_type", "activation_type", "afrac_loctypes", "tokenizer_name")

#: Their AbsTopK location names -> our AbsTopK sites (ModelConfig.afrac_sites).
LOCTYPE_SITES = {
    "attn_in": "attn.read", "attn_q": "attn.q", "attn_k": "attn.k", "attn_v": "attn.v", "attn_out": "attn.write",
    "mlp_in": "mlp.read", "mlp_neuron": "mlp.neuron", "mlp_out": "mlp.write",
    "resid_post_attn": "resid_post_attn", "resid_post_mlp": "resid_post_mlp",
}
_SITE_LOCTYPES = {v: k for k, v in LOCTYPE_SITES.items()}
_NODE_SITES = ("attn.read", "attn.q", "attn.k", "attn.v", "attn.write", "mlp.read", "mlp.neuron", "mlp.write")

#: Their hook names (hook_recorder, ``{L}.<suffix>``) -> our site kind in block L.
HOOK_SITES = {
    "attn.act_in": "attn.read", "attn.q": "attn.q", "attn.k": "attn.k", "attn.v": "attn.v",
    "attn.resid_delta": "attn.write", "mlp.act_in": "mlp.read", "mlp.post_act": "mlp.neuron",
    "mlp.resid_delta": "mlp.write",
}
#: Their residual hooks -> our half-block boundary (``{L}.resid_in`` = 2L, ``{L}.resid_mid`` = 2L+1),
#: compared on the d_model content channels.
HOOK_BOUNDARY_OFFSETS = {"resid_in": 0, "resid_mid": 1}
FINAL_RESID_HOOK = "final_resid"
"Their residual before ln_f: our site ``final_resid`` (engine.sites.FINAL_RESID), also boundary 2*n_layer."
#: Their hooks with no counterpart among our sites (the heads' outputs before c_proj).
HOOKS_WITHOUT_SITE = ("attn.y",)


def _fail(source: str, message: str) -> NoReturn:
    raise UserError(f"{source}: {message}")


def normalize_config(raw: Any, source: str) -> tuple[dict[str, Any], list[str]]:
    """Their config with legacy spellings resolved and defaults filled in, and the ignored keys.

    As their loader: ``n_mlp`` is ``d_mlp``, ``use_tied_aux_matrix`` must be false. Keys their class no
    longer has (training-only keys of older releases) are ignored and returned sorted. Values of the
    wrong type are errors naming the key.
    """
    if not isinstance(raw, dict):
        _fail(source, f"expected a JSON object (their GPTConfig), got {type(raw).__name__}")
    data = dict(raw)
    if "n_mlp" in data:
        n_mlp = data.pop("n_mlp")
        if data.get("d_mlp") not in (None, n_mlp):
            _fail(source, f"n_mlp ({n_mlp}) and d_mlp ({data['d_mlp']}) disagree")
        data["d_mlp"] = n_mlp
    if data.pop("use_tied_aux_matrix", False):
        _fail(source, "use_tied_aux_matrix is not supported (their own loader requires it to be false)")
    ignored = sorted(set(data) - set(GPT_CONFIG_DEFAULTS))
    cfg = {k: data.get(k, default) for k, default in GPT_CONFIG_DEFAULTS.items()}
    for key in _INT_KEYS:
        _check_int(cfg[key], key, source, optional=False)
    for key in _OPTIONAL_INT_KEYS:
        _check_int(cfg[key], key, source, optional=True)
    for key in _BOOL_KEYS:
        if not isinstance(cfg[key], bool):
            _fail(source, f"{key} must be true or false, got {cfg[key]!r}")
    for key in _STR_KEYS:
        if not isinstance(cfg[key], str):
            _fail(source, f"{key} must be a string, got {cfg[key]!r}")
    for key, nullable in (("dropout", False), ("afrac", True)):
        value = cfg[key]
        if not (nullable and value is None) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            _fail(source, f"{key} must be a number{' or null' if nullable else ''}, got {value!r}")
    return cfg, ignored


def _check_int(value: Any, key: str, source: str, optional: bool) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail(source, f"{key} must be a positive integer{' or null' if optional else ''}, got {value!r}")


def afrac_sites(cfg: dict[str, Any], source: str) -> tuple[str, ...]:
    """Our AbsTopK sites for their ``afrac_loctypes`` (in our canonical order); unknown names are errors."""
    names = [n.strip() for n in cfg["afrac_loctypes"].split(",") if n.strip()]
    unknown = sorted(set(names) - set(LOCTYPE_SITES))
    if unknown:
        _fail(source, f"afrac_loctypes: unknown location(s) {', '.join(unknown)} "
                      f"(known: {', '.join(LOCTYPE_SITES)})")
    chosen = {LOCTYPE_SITES[n] for n in names}
    return tuple(s for s in LOCTYPE_SITES.values() if s in chosen)


def shapes(cfg: dict[str, Any]) -> dict[str, int]:
    """Their derived widths: D, P (position channels, 0 with additive positions), Din, H, dh, I, M, V, B."""
    d_model, n_head = cfg["d_model"], cfg["n_head"]
    d_head = cfg["d_head"] or d_model // n_head
    p = cfg["d_pos_emb"] or 0
    return {"D": d_model, "P": p, "Din": d_model + p, "H": n_head, "dh": d_head, "I": n_head * d_head,
            "M": cfg["d_mlp"] or 4 * d_model, "V": cfg["vocab_size"], "B": cfg["block_size"]}


def model_config(cfg: dict[str, Any], source: str) -> ModelConfig:
    """Our ModelConfig for their (normalised) config; options we cannot run are one error each."""
    for key, allowed in (("activation_type", ("gelu", "relu")), ("residual_activation_type", ("identity", "relu"))):
        if cfg[key] not in allowed:
            _fail(source, f"{key} {cfg[key]!r} is not supported (supported: {', '.join(allowed)})")
    if cfg["d_head"] is None and cfg["d_model"] % cfg["n_head"]:
        _fail(source, f"d_model ({cfg['d_model']}) must be a multiple of n_head ({cfg['n_head']}) when d_head is null")
    s = shapes(cfg)
    sites = afrac_sites(cfg, source)
    afrac = cfg["afrac"]
    if afrac is not None and not 0.0 < afrac <= 1.0:
        _fail(source, f"afrac must be in (0, 1] or null, got {afrac}")
    on = afrac is not None and bool(sites) and afrac < 1.0
    rms = cfg["rms_norm"]
    mc = ModelConfig(
        vocab_size=s["V"], n_layer=cfg["n_layer"], d_model=s["D"], d_mlp=s["M"], d_head=s["dh"], n_ctx=s["B"],
        attn_sink=cfg["sink"], bigram_table=cfg["enable_bigram_table"], pos_channels=s["P"], alibi_heads=0,
        afrac=float(afrac) if on else 1.0,
        heads=0 if s["I"] == s["D"] else s["H"], pos_additive=not s["P"],
        pos_norm="separate" if s["P"] else "joint",
        norm="rms" if rms else "layer", norm_eps=FLOAT32_EPS if rms else LAYERNORM_EPS,
        norm_bias=(not rms) and cfg["ln_bias"], linear_bias=cfg["bias"], mlp_act=cfg["activation_type"],
        resid_act=cfg["residual_activation_type"], afrac_sites=sites if on else (), afrac_floor=on,
        tied_embed=cfg["tied_unembed"],
    )
    try:
        mc.validate()
    except UserError as exc:
        _fail(source, f"cannot be expressed as our model config: {exc}")
    return mc


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of their state dict: its allowed shapes and our name (None: checked, not stored)."""

    theirs: str
    ours: str | None
    shapes: tuple[tuple[int, ...], ...]
    required: bool = True


def _norm_specs(theirs: str, ours: str, width: int, cfg: dict[str, Any]) -> list[TensorSpec]:
    out = [TensorSpec(f"{theirs}.weight", f"{ours}.weight", ((width,),))]
    if not cfg["rms_norm"] and cfg["ln_bias"]:
        out.append(TensorSpec(f"{theirs}.bias", f"{ours}.bias", ((width,),)))
    return out


def _linear_specs(theirs: str, ours: str, rows: int, cols: int, cfg: dict[str, Any]) -> list[TensorSpec]:
    out = [TensorSpec(f"{theirs}.weight", f"{ours}.weight", ((rows, cols),))]
    if cfg["bias"]:
        out.append(TensorSpec(f"{theirs}.bias", f"{ours}.bias", ((rows,),)))
    return out


def _block_specs(i: int, cfg: dict[str, Any], s: dict[str, int]) -> list[TensorSpec]:
    t, o = f"transformer.h.{i}", f"blocks.{i}"
    specs = _norm_specs(f"{t}.ln_1", f"{o}.ln1", s["D"], cfg) + _norm_specs(f"{t}.ln_2", f"{o}.ln2", s["D"], cfg)
    if s["P"]:
        specs += _norm_specs(f"{t}.ln_p1", f"{o}.ln1_pos", s["P"], cfg)
        specs += _norm_specs(f"{t}.ln_p2", f"{o}.ln2_pos", s["P"], cfg)
    specs += _linear_specs(f"{t}.attn.c_attn", f"{o}.attn.c_attn", 3 * s["I"], s["Din"], cfg)
    specs += _linear_specs(f"{t}.attn.c_proj", f"{o}.attn.c_proj", s["D"], s["I"], cfg)
    if cfg["sink"]:  # a 1-element sink is shared by all heads
        specs.append(TensorSpec(f"{t}.attn.attn_imp.sink_logit", f"{o}.attn.sink", ((s["H"],), (1,))))
    specs += _linear_specs(f"{t}.mlp.c_fc", f"{o}.mlp.c_fc", s["M"], s["Din"], cfg)
    specs += _linear_specs(f"{t}.mlp.c_proj", f"{o}.mlp.c_proj", s["D"], s["M"], cfg)
    return specs


def tensor_specs(cfg: dict[str, Any]) -> list[TensorSpec]:
    """Every tensor their state dict holds for this config, in their module order."""
    s = shapes(cfg)
    specs = [TensorSpec("transformer.wte.weight", "wte.weight", ((s["V"], s["D"]),)),
             TensorSpec("transformer.wpe.weight", "wpe" if s["P"] else "wpe_add", ((s["B"], s["P"] or s["D"]),))]
    for i in range(cfg["n_layer"]):
        specs += _block_specs(i, cfg, s)
    specs += _norm_specs("transformer.ln_f", "ln_f", s["D"], cfg)
    specs.append(TensorSpec("lm_head.weight", None if cfg["tied_unembed"] else "lm_head.weight", ((s["V"], s["D"]),)))
    specs.append(TensorSpec("final_logits_bias", "lm_head.bias", ((s["V"],),), required=False))
    if cfg["enable_bigram_table"]:
        specs.append(TensorSpec("bigram_table", "bigram", ((s["V"], s["V"]),)))
    return specs


def is_ignored_buffer(name: str) -> bool:
    """Their causal-mask buffers (``transformer.h.{i}.attn.bias``, models built with flash=False)."""
    parts = name.split(".")
    return len(parts) == 5 and parts[:2] == ["transformer", "h"] and parts[2].isdigit() and parts[3:] == ["attn", "bias"]


# ---------------------------------------------------------------------------------------------
# Our runs in their format


def openai_config(mc: ModelConfig) -> dict[str, Any]:
    """Their GPTConfig (every key, in their order) for our model config; what their format cannot
    express is one error naming our option."""
    refuse = {"alibi_heads": mc.alibi_heads > 0,
              "pos_channels (positions as residual channels normalised with the content; theirs are separate)":
                  mc.pos_channels > 0 and mc.pos_norm != "separate",
              "norm_eps (theirs: float32 eps with RMSNorm, 1e-5 with LayerNorm)":
                  mc.norm_eps != (FLOAT32_EPS if mc.norm == "rms" else LAYERNORM_EPS),
              "afrac with round() (they keep int(afrac * width) entries)": not _floor_equivalent(mc)}
    bad = [name for name, hit in refuse.items() if hit]
    if bad:
        raise UserError(f"OpenAI's format cannot express {'; '.join('model.' + b for b in bad)}; "
                        f"this run cannot be exported")
    sites = mc.afrac_sites or _NODE_SITES
    cfg = dict(GPT_CONFIG_DEFAULTS)
    cfg.update(
        block_size=mc.n_ctx, vocab_size=mc.vocab_size, n_layer=mc.n_layer, n_head=mc.n_head, d_head=mc.d_head,
        d_model=mc.d_model, dropout=0.0, bias=mc.linear_bias, ln_bias=mc.norm_bias, rms_norm=mc.norm == "rms",
        residual_activation_type=mc.resid_act, activation_type=mc.mlp_act,
        afrac=mc.afrac if mc.afrac < 1.0 else None,
        afrac_loctypes=",".join(_SITE_LOCTYPES[s] for s in sites) if mc.afrac < 1.0 else cfg["afrac_loctypes"],
        tied_unembed=mc.tied_embed,
        d_mlp=mc.d_mlp, enable_bigram_table=mc.bigram_table, d_pos_emb=mc.pos_channels or None, sink=mc.attn_sink,
    )
    return cfg


def _floor_equivalent(mc: ModelConfig) -> bool:
    """Whether AbsTopK keeps the same k at every site under their floor rule as under ours."""
    if mc.afrac >= 1.0 or mc.afrac_floor:
        return True
    inner = mc.n_head * mc.d_head
    widths = {"attn.read": mc.d_resid, "attn.q": inner, "attn.k": inner, "attn.v": inner, "attn.write": mc.d_model,
              "mlp.read": mc.d_resid, "mlp.neuron": mc.d_mlp, "mlp.write": mc.d_model,
              "resid_post_attn": mc.d_model, "resid_post_mlp": mc.d_model}
    return all(max(1, round(mc.afrac * widths[s])) == int(mc.afrac * widths[s]) for s in mc.afrac_sites or _NODE_SITES)


def export_names(cfg: dict[str, Any]) -> dict[str, str]:
    """Our parameter name -> theirs, for the tensors an export writes (not the tied lm_head)."""
    return {spec.ours: spec.theirs for spec in tensor_specs(cfg) if spec.ours is not None}
