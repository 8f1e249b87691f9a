"""Typed, frozen configuration for models, sparsity, data and training, with strict JSON io.

Every field has a default and a docstring (the comment under it). Configs are stored as JSON beside
every artifact; loading is strict (an unknown key is an error, not a silent typo) and files written
by older versions are migrated by ``schema_version``. This module knows nothing about torch or Qt.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from engine.errors import UserError
from engine.fileio import read_json
from engine.sites import SITE_KINDS

SCHEMA_VERSION = 1

# Launch settings of multi-process runs (not part of a run's config: a run may resume under others).
DEFAULT_TIMEOUT_S = 600.0
"Seconds a torchrun rank waits at the rendezvous or in any collective before it stops with an error."
DEFAULT_MASK_CHECK_EVERY = 100
"Training steps between the all-gathers that compare the ranks' top-k mask checksums."
MAX_LAYERS = 1024
"Most transformer blocks a model may have."
MAX_HEADS = 65536
"Most attention heads per layer."
MAX_WIDTH = 2 ** 31
"Largest vocabulary, width, context or head size (what memory allows is checked when a model is built)."
MAX_STEPS = 100_000_000
"Most optimizer steps a run may have (the paper's runs take tens of thousands; more never finishes)."


#: Where AbsTopK may apply: the node sites of every block, and the residual after each sublayer.
AFRAC_SITES = SITE_KINDS + ("resid_post_attn", "resid_post_mlp")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the GPT (SPEC §1, §3)."""

    vocab_size: int = 97
    "Number of token ids; set from the tokenizer when a run is created."
    n_layer: int = 2
    "Number of transformer blocks."
    d_model: int = 128
    "Residual stream width (content channels; position channels come on top)."
    d_mlp: int = 512
    "MLP hidden width (neurons per layer)."
    d_head: int = 16
    "Width of one attention head; n_head = d_model / d_head."
    n_ctx: int = 128
    "Context length in tokens."
    attn_sink: bool = True
    "Per-head learnable attention-sink logit (an always-visible empty key slot)."
    bigram_table: bool = True
    "Dense vocab x vocab table added to the logits from the current token; never sparsified."
    pos_channels: int = 0
    "Learned absolute positions as this many extra read-only residual channels (0 = NoPE)."
    alibi_heads: int = 0
    "ALiBi on the first n heads: a fixed recency bias -m_h*(i-j) on their logits, m_h = 2^(-8(h+1)/n); 0 = NoPE."
    alibi_from_layer: int = 0
    "With alibi_heads: the first layer that has ALiBi (earlier layers have no positions)."
    afrac: float = 0.25
    "AbsTopK: fraction of each activation vector kept at the 8 sites (1.0 disables it)."
    init_std: float = 0.02
    "Standard deviation of the normal weight init; output projections use init_std/sqrt(2*n_layer)."
    # -- options of other weight-sparse GPTs (OpenAI's released models); the defaults are ours -------
    heads: int = 0
    "Number of attention heads; 0 = d_model / d_head. When set, heads * d_head may differ from d_model."
    pos_additive: bool = False
    "Learned absolute positions added to the token embedding (a [n_ctx, d_model] table, wpe_add)."
    pos_norm: str = "joint"
    "With pos_channels: 'joint' normalises them with the content channels; 'separate' gives them their own norms in every read, and the unembedding reads only the d_model content channels."
    norm: str = "rms"
    "Normalisation: 'rms' (RMSNorm) or 'layer' (LayerNorm)."
    norm_eps: float = 1e-5
    "Epsilon inside the norms' square root (OpenAI's RMSNorm uses float32 eps, 1.1920929e-07)."
    norm_bias: bool = False
    "LayerNorm with a learned bias (only with norm='layer')."
    linear_bias: bool = True
    "Biases in the attention and MLP matrices (the unembedding always has one)."
    mlp_act: str = "gelu"
    "MLP nonlinearity: 'gelu' (exact, erf) or 'relu'."
    resid_act: str = "identity"
    "Applied to the residual after each sublayer's add: 'identity' or 'relu'."
    afrac_sites: tuple[str, ...] = ()
    "Sites where AbsTopK applies: node-site kinds (attn.read ... mlp.write) and resid_post_attn / resid_post_mlp; empty = the 8 node sites."
    afrac_floor: bool = False
    "AbsTopK keeps int(afrac * width) entries (a floor, possibly 0) instead of max(1, round(afrac * width))."
    tied_embed: bool = False
    "The unembedding matrix is the token embedding matrix (one tensor); needs lm_head to read d_model channels."

    @property
    def n_head(self) -> int:
        return self.heads or self.d_model // self.d_head

    @property
    def d_resid(self) -> int:
        """Width of the residual stream that reads see: content plus position channels."""
        return self.d_model + self.pos_channels

    @property
    def d_unembed(self) -> int:
        """Width the final norm and the unembedding read: d_resid, or d_model with separate position norms."""
        return self.d_model if self.pos_norm == "separate" else self.d_resid

    def validate(self) -> None:
        _check(self.vocab_size >= 2, "model.vocab_size must be at least 2")
        _check(1 <= self.n_layer <= MAX_LAYERS, f"model.n_layer must be in 1..{MAX_LAYERS}, got {self.n_layer}")
        big = [k for k in ("vocab_size", "d_model", "d_mlp", "d_head", "n_ctx", "pos_channels", "heads")
               if getattr(self, k) > MAX_WIDTH]
        _check(not big, f"model.{big[0] if big else ''} must be at most {MAX_WIDTH:,}")
        _check(self.d_head >= 1 and (self.heads > 0 or self.d_model % self.d_head == 0),
               f"model.d_model ({self.d_model}) must be a multiple of model.d_head ({self.d_head})")
        _check(self.n_head <= MAX_HEADS, f"model.d_model / model.d_head (or model.heads) gives {self.n_head:,} "
                                         f"attention heads; at most {MAX_HEADS:,} are supported")
        _check(self.heads >= 0, "model.heads must be >= 0 (0 = d_model / d_head)")
        _check(self.d_mlp >= 1, "model.d_mlp must be positive")
        _check(self.n_ctx >= 2, "model.n_ctx must be at least 2")
        _check(self.pos_channels >= 0, "model.pos_channels must be >= 0")
        _check(0 <= self.alibi_heads <= self.n_head,
               f"model.alibi_heads must be in 0..{self.n_head} (the number of heads), got {self.alibi_heads}")
        _check(0 <= self.alibi_from_layer < self.n_layer,
               f"model.alibi_from_layer must be in 0..{self.n_layer - 1} (a layer index), got {self.alibi_from_layer}")
        _check(0.0 < self.afrac <= 1.0, f"model.afrac must be in (0, 1], got {self.afrac}")
        _check(self.init_std > 0, "model.init_std must be positive")
        self._validate_options()

    def _validate_options(self) -> None:
        for key, allowed in (("pos_norm", ("joint", "separate")), ("norm", ("rms", "layer")),
                             ("mlp_act", ("gelu", "relu")), ("resid_act", ("identity", "relu"))):
            _check(getattr(self, key) in allowed,
                   f"model.{key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        bad = sorted(set(self.afrac_sites) - set(AFRAC_SITES))
        _check(not bad, f"model.afrac_sites: unknown site(s) {', '.join(bad)}; valid: {', '.join(AFRAC_SITES)}")
        _check(self.norm_eps > 0, "model.norm_eps must be positive")
        _check(not (self.norm_bias and self.norm == "rms"), "model.norm_bias needs model.norm='layer'")
        _check(not (self.pos_additive and self.pos_channels),
               "model.pos_additive and model.pos_channels exclude each other (one kind of positions)")
        _check(self.pos_norm == "joint" or self.pos_channels > 0, "model.pos_norm='separate' needs pos_channels > 0")
        _check(not self.tied_embed or self.d_unembed == self.d_model,
               "model.tied_embed needs the unembedding to read d_model channels (no joint pos_channels)")


@dataclass(frozen=True)
class SparsityConfig:
    """Weight sparsity by projection onto the top-k weights (SPEC §2)."""

    enabled: bool = True
    "False trains the dense twin: no weight masking, no sharkfin factor, everything else identical."
    density: float = 1 / 16
    "Fraction of entries kept in each q/k/v, attention-out, MLP-in and MLP-out matrix."
    embed_density: float = 0.0
    "Fraction kept in the embedding, unembedding and position tables; 0 means min(1, 4*density)."
    min_per_line: int = 4
    "At least this many nonzeros survive in every neuron line (input row / output column)."
    anneal_start: float = 0.01
    "Fraction of training after which the kept fraction starts to fall from 1."
    anneal_end: float = 0.5
    "Fraction of training at which the kept fraction reaches its target and holds."

    @property
    def embed_target(self) -> float:
        return self.embed_density if self.embed_density > 0 else min(1.0, 4 * self.density)

    def validate(self) -> None:
        _check(0.0 < self.density <= 1.0,
               f"sparsity.density must be in (0, 1], got {self.density} (try 0.0625 = 1/16)")
        _check(0.0 <= self.embed_density <= 1.0,
               f"sparsity.embed_density must be in [0, 1], got {self.embed_density}")
        _check(self.min_per_line >= 0, "sparsity.min_per_line must be >= 0")
        _check(0.0 <= self.anneal_start <= self.anneal_end <= 1.0,
               "sparsity.anneal_start <= sparsity.anneal_end must both lie in [0, 1]")


@dataclass(frozen=True)
class DataConfig:
    """Where the pretraining text comes from and how it is tokenised (SPEC §4)."""

    folders: tuple[str, ...] = ()
    "Source folders to read recursively; empty means the running interpreter's standard library."
    extensions: tuple[str, ...] = (".py",)
    "File name endings to read from the folders."
    exclude_tests: bool = True
    "Skip folders named test/tests/idle_test (the stdlib's test suites)."
    snippet_frac: float = 0.4
    "Fraction of training sequences drawn from generated simple-idiom snippets."
    val_frac: float = 0.05
    "Fraction of files (by a hash of their path) held out for validation."
    max_chars: int = 0
    "Read at most this many characters of source (0 = all); small presets use it."
    snippet_max_chars: int = 4_000_000
    ("Cap on the generated snippet text, which is otherwise 1.5x the snippet characters a run reads (so that "
     "sequences rarely repeat); 0 = no cap.")
    tokenizer: str = "char"
    "Tokenizer kind: 'char' (printable ASCII, ~100 ids) or 'bpe' (trained locally)."
    bpe_vocab: int = 2048
    "Vocabulary size of the BPE tokenizer."

    def validate(self) -> None:
        _check(0.0 <= self.snippet_frac <= 1.0, "data.snippet_frac must be in [0, 1]")
        _check(0.0 < self.val_frac < 0.5, "data.val_frac must be in (0, 0.5)")
        _check(self.max_chars >= 0, "data.max_chars must be >= 0")
        _check(self.snippet_max_chars >= 0, "data.snippet_max_chars must be >= 0 (0 = no cap)")
        _check(self.tokenizer in ("char", "bpe"),
               f"data.tokenizer must be 'char' or 'bpe', got {self.tokenizer!r}")
        _check(self.bpe_vocab >= 300, "data.bpe_vocab must be at least 300")
        _check(len(self.extensions) > 0, "data.extensions must not be empty")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping (SPEC §2)."""

    steps: int = 3000
    "Optimizer steps."
    batch_size: int = 32
    "Sequences per step (the global batch when several processes train)."
    lr: float = 1e-2
    "Peak learning rate before the sharkfin factor."
    warmup_frac: float = 0.02
    "Linear warmup over this fraction of the steps, then linear decay to 0."
    beta1: float = 0.9
    "Adam beta1."
    beta2: float = 0.95
    "Adam beta2."
    eps: float = 0.1
    "Adam epsilon; unusually large on purpose (SPEC §2)."
    weight_decay: float = 0.1
    "Decoupled weight decay on matrices (not the bigram table, biases or gains), after masking."
    grad_rms_norm: bool = True
    "Divide all gradients by (global gradient RMS + 1e-5) every step."
    sharkfin: bool = True
    "Multiply the lr by sqrt(L0_target / L0_current) during annealing."
    eval_interval: int = 200
    "Steps between validation evaluations."
    eval_batches: int = 8
    "Validation batches per evaluation (fixed across the run)."
    checkpoint_interval: int = 500
    "Steps between checkpoints (a final one is always written)."
    keep_checkpoints: int = 0
    "Keep only the newest N step checkpoints (0 keeps all)."
    seed: int = 0
    "Seeds the init and the data order; the dense twin with the same seed sees the same batches."
    device: str = "cpu"
    "'cpu' or 'cuda'; under torchrun every process takes cuda:LOCAL_RANK."
    precision: str = "auto"
    "'auto' (bf16 autocast and TF32 matmuls on CUDA, fp32 on CPU), 'bf16' (autocast on any device), 'fp32'."

    def validate(self) -> None:
        _check(1 <= self.steps <= MAX_STEPS, f"train.steps must be in 1..{MAX_STEPS:,}, got {self.steps:,}")
        _check(self.batch_size >= 1, "train.batch_size must be >= 1")
        _check(self.lr > 0, "train.lr must be positive")
        _check(0.0 <= self.warmup_frac < 1.0, "train.warmup_frac must be in [0, 1)")
        _check(0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0, "train.beta1/beta2 must be in [0, 1)")
        _check(self.eps > 0, "train.eps must be positive")
        _check(self.weight_decay >= 0, "train.weight_decay must be >= 0")
        _check(self.eval_interval >= 1, "train.eval_interval must be >= 1")
        _check(self.eval_batches >= 1, "train.eval_batches must be >= 1")
        _check(self.checkpoint_interval >= 1, "train.checkpoint_interval must be >= 1")
        _check(self.keep_checkpoints >= 0, "train.keep_checkpoints must be >= 0")
        _check(self.device in ("cpu", "cuda") or self.device.startswith("cuda:"),
               f"train.device must be 'cpu' or 'cuda', got {self.device!r}")
        _check(self.precision in ("auto", "bf16", "fp32"),
               f"train.precision must be 'auto', 'bf16' or 'fp32', got {self.precision!r}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run; stored as ``config.json`` in the run folder."""

    model: ModelConfig = field(default_factory=ModelConfig)
    sparsity: SparsityConfig = field(default_factory=SparsityConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = "custom"
    "Name of the preset this config started from (informational)."

    def validate(self) -> "RunConfig":
        for section in _SECTIONS:
            part = getattr(self, section)
            for name, value in nonfinite_fields(part):
                raise UserError(f"{section}.{name} must be a finite number, got {value!r}")
            part.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["schema_version"] = SCHEMA_VERSION
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def nonfinite_fields(obj: Any) -> list[tuple[str, Any]]:
    """(name, value) of each field of a dataclass that is a NaN or infinite float, or a tuple holding one."""
    bad = ((f.name, getattr(obj, f.name)) for f in fields(obj))
    return [(k, v) for k, v in bad if any(isinstance(x, float) and not math.isfinite(x)
                                          for x in (v if isinstance(v, tuple) else (v,)))]


# ---------------------------------------------------------------------------------------------
# Presets

PRESETS: dict[str, RunConfig] = {
    # Trains in well under 30 s on 2 cores; the tests use it.
    "tiny": RunConfig(
        preset="tiny",
        model=ModelConfig(n_layer=2, d_model=32, d_mlp=128, n_ctx=64),
        sparsity=SparsityConfig(density=0.25, min_per_line=4),
        data=DataConfig(max_chars=400_000, snippet_frac=0.4),
        train=TrainConfig(steps=150, batch_size=16, lr=1e-2, eval_interval=50, eval_batches=4,
                          checkpoint_interval=50),
    ),
    # The CPU recipe of SPEC §9: about 10-15 minutes on 2 cores.
    "demo": RunConfig(
        preset="demo",
        model=ModelConfig(n_layer=2, d_model=128, d_mlp=512, n_ctx=128),
        sparsity=SparsityConfig(density=1 / 16, min_per_line=4),
        data=DataConfig(snippet_frac=0.7),
        train=TrainConfig(steps=4000, batch_size=32, lr=1e-2, eval_interval=250, eval_batches=8,
                          checkpoint_interval=250),
    ),
    # The paper's 1x model (8 layers, d_model 256, BPE 2048): meant for GPUs.
    "paper-1x": RunConfig(
        preset="paper-1x",
        model=ModelConfig(n_layer=8, d_model=256, d_mlp=1024, n_ctx=256, vocab_size=2048),
        sparsity=SparsityConfig(density=1 / 16, min_per_line=4),
        data=DataConfig(tokenizer="bpe", bpe_vocab=2048, snippet_frac=0.3),
        train=TrainConfig(steps=20000, batch_size=64, lr=1e-2, eval_interval=500, eval_batches=16,
                          checkpoint_interval=1000),
    ),
}


def preset(name: str) -> RunConfig:
    """The named preset; a UserError lists the valid names."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


# ---------------------------------------------------------------------------------------------
# Strict dict/JSON io

_SECTIONS = {"model": ModelConfig, "sparsity": SparsityConfig, "data": DataConfig, "train": TrainConfig}

# schema_version -> function upgrading a dict of that version to the next one.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise UserError(f"{where} must be a JSON object, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UserError(f"unknown config key(s) {', '.join(where + '.' + k for k in unknown)}; "
                        f"valid keys in {where}: {', '.join(sorted(known))}")
    kwargs = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        kwargs[name] = _coerce(value, default, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UserError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise UserError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where} must be a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise UserError(f"{where} must be a finite number, got {value!r}")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise UserError(f"{where} must be a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise UserError(f"{where} must be a list, got {value!r}")
        if not all(isinstance(v, str) for v in value):
            raise UserError(f"{where} must be a list of strings")
        return tuple(value)
    return value


def run_config_from_dict(data: dict[str, Any], base: RunConfig | None = None) -> RunConfig:
    """Build a RunConfig from a (possibly partial) dict on top of ``base`` (default: defaults).

    Unknown keys raise UserError; an old ``schema_version`` is migrated first.
    """
    if not isinstance(data, dict):
        raise UserError("a config must be a JSON object")
    data = dict(data)
    version = data.pop("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
        raise UserError(f"config schema_version {version!r} is not supported (this version reads "
                        f"1..{SCHEMA_VERSION}); upgrade circuit-inspector")
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    base = base or RunConfig()
    unknown = sorted(set(data) - set(_SECTIONS) - {"preset"})
    if unknown:
        raise UserError(f"unknown config key(s) {', '.join(unknown)}; valid sections: "
                        f"{', '.join(sorted(_SECTIONS))}, preset")
    updates: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        if section in data:
            merged = {**dataclasses.asdict(getattr(base, section)), **_as_obj(data[section], section)}
            updates[section] = _build(cls, merged, section)
    if "preset" in data:
        updates["preset"] = _coerce(data["preset"], "", "preset")
    return replace(base, **updates).validate()


def _as_obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UserError(f"{where} must be a JSON object")
    return value


def apply_overrides(cfg: RunConfig, assignments: list[str]) -> RunConfig:
    """Apply ``section.key=value`` strings (value parsed as JSON, else taken as a string)."""
    patch: dict[str, dict[str, Any]] = {}
    for item in assignments:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise UserError(f"--set expects section.key=value (e.g. train.steps=500), got {item!r}")
        key, raw = item.split("=", 1)
        section, name = key.split(".", 1)
        try:
            value = json.loads(raw)
        except ValueError:  # not JSON (or a number too long): the text itself
            value = raw
        except RecursionError:
            raise UserError(f"--set {key}: the value nests arrays or objects too deep") from None
        patch.setdefault(section, {})[name] = value
    return run_config_from_dict(patch, base=cfg)


def load_run_config(path: Path) -> RunConfig:
    """Read a run's config.json strictly."""
    return run_config_from_dict(read_json(path, what="run config"))


def preset_names() -> list[str]:
    """Names of the config presets, smallest first (``tiny``, ``demo``, ``paper-1x``)."""
    return list(PRESETS)


def make_config(preset_name: str = "tiny", *, dense: bool = False, steps: int | None = None,
                corpus: list[str] | None = None, tokenizer: str | None = None, device: str | None = None,
                config_file: Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """A validated RunConfig: preset, then a JSON config file, then ``section.key=value`` overrides,
    then the explicit arguments."""
    cfg = preset(preset_name)
    if config_file is not None:
        cfg = run_config_from_dict(read_json(Path(config_file), what="config file"), base=cfg)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    flat: list[str] = []
    if dense:
        flat.append("sparsity.enabled=false")
    if steps is not None:
        flat.append(f"train.steps={int(steps)}")
    if tokenizer is not None:
        flat.append(f"data.tokenizer={tokenizer}")
    if device is not None:
        flat.append(f"train.device={device}")
    cfg = apply_overrides(cfg, flat) if flat else cfg
    if corpus:
        cfg = run_config_from_dict({"data": {"folders": [str(Path(c).expanduser()) for c in corpus]}}, base=cfg)
    return cfg.validate()
