"""Names of the model's node sites, node ids, and the per-call intervention context.

A *site* is a named activation vector inside the model, e.g. ``blocks.1.attn.v``; a *node* is one
channel of a site (``blocks.1.attn.v:37``). The same absolute names key the model, the HDF5 store,
circuits and the UI. Interventions (recording, ablation, masks) are installed per call with
:func:`intervene`, which uses a ContextVar: no global hook state, safe across threads, restored in
``finally``. This module knows nothing about training, files or Qt, and imports no torch: the app reads the
site kinds from here before the engine is loaded.
"""

from __future__ import annotations

import contextlib
import re
from contextvars import ContextVar
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Mapping, NamedTuple

from engine.errors import UserError

if TYPE_CHECKING:  # annotations only: engine.config reads the site kinds from here
    from engine.config import ModelConfig

# Node sites of one block, in forward order. "read" = the block's normalised input (a read of the
# residual stream), "write" = what the half-block adds back to the residual stream.
ATTN_KINDS = ("attn.read", "attn.q", "attn.k", "attn.v", "attn.write")
MLP_KINDS = ("mlp.read", "mlp.neuron", "mlp.write")
SITE_KINDS = ATTN_KINDS + MLP_KINDS
HALF_BLOCK_KINDS = (ATTN_KINDS, MLP_KINDS)  # the two half-blocks of a layer
#: Stage of each kind within its half-block: 0 reads the residual stream, 1 is computed from the
#: read (q, k, v; MLP neurons), 2 is written back. Kinds of one stage share their input.
SITE_STAGE = {"attn.read": 0, "attn.q": 1, "attn.k": 1, "attn.v": 1, "attn.write": 2,
              "mlp.read": 0, "mlp.neuron": 1, "mlp.write": 2, "final_resid": 0}
RESIDUAL_KINDS = ("attn.read", "attn.write", "mlp.read", "mlp.write")  # reads and writes of the residual stream

#: The residual the unembedding reads (its d_model content channels, before the final norm): one
#: site after every block. Ablatable like any site; our pruning keeps it whole, OpenAI's prunes it.
FINAL_RESID = "final_resid"
FINAL_LAYER = 1 << 20  # the layer parse_site gives final_resid: after every block

SITE_LABELS = {
    "attn.read": "attention read", "attn.q": "query", "attn.k": "key", "attn.v": "value",
    "attn.write": "attention write", "mlp.read": "MLP read", "mlp.neuron": "MLP neuron",
    "mlp.write": "MLP write", FINAL_RESID: "final residual",
}

_SITE_RE = re.compile(r"^blocks\.(\d+)\.(attn\.(?:read|q|k|v|write)|mlp\.(?:read|neuron|write))$")


def site_name(layer: int, kind: str) -> str:
    return f"blocks.{layer}.{kind}"


def parse_site(name: str) -> tuple[int, str]:
    """``'blocks.1.attn.v'`` -> ``(1, 'attn.v')``, ``'final_resid'`` -> ``(FINAL_LAYER, 'final_resid')``;
    UserError for anything else."""
    if name == FINAL_RESID:
        return FINAL_LAYER, FINAL_RESID
    m = _SITE_RE.match(name)
    if not m:
        raise UserError(f"unknown site {name!r}; sites look like blocks.<layer>.<kind> with kind one of "
                        f"{', '.join(SITE_KINDS)}, or {FINAL_RESID}")
    return int(m.group(1)), m.group(2)


def all_sites(cfg: ModelConfig, final: bool = False) -> list[str]:
    """Every node site of the blocks, in forward order; with ``final``, then ``final_resid`` (what
    ablation, means and views cover; pruning and the activation store cover the block sites)."""
    sites = [site_name(layer, kind) for layer in range(cfg.n_layer) for kind in SITE_KINDS]
    return sites + [FINAL_RESID] if final else sites


def site_width(cfg: ModelConfig, name: str) -> int:
    layer, kind = parse_site(name)
    if kind == FINAL_RESID:
        return cfg.d_model
    if layer >= cfg.n_layer:
        raise UserError(f"site {name!r}: layer {layer} out of range, the model has layers 0..{cfg.n_layer - 1}")
    if kind in ("attn.read", "mlp.read"):
        return cfg.d_resid
    if kind in ("attn.q", "attn.k", "attn.v"):
        return cfg.n_head * cfg.d_head
    if kind == "mlp.neuron":
        return cfg.d_mlp
    return cfg.d_model  # writes


def site_half_block(name: str, n_layer: int | None = None) -> int:
    """Index of the half-block that computes a site: 2*layer for attention, 2*layer+1 for MLP;
    ``final_resid`` is the boundary after the last one (2*n_layer; without n_layer, a large number)."""
    layer, kind = parse_site(name)
    if kind == FINAL_RESID:
        return 2 * (FINAL_LAYER if n_layer is None else n_layer)
    return 2 * layer + (0 if kind.startswith("attn.") else 1)


def store_bytes(n_tokens: int, n_nodes: int) -> int:
    """An activation store's size on disk: every node's float16 activation and the int32 token, per
    recorded token (the recorder checks free space with it; the app's record button sizes its
    recording by it, and this module is one the app may import)."""
    return n_tokens * (2 * n_nodes + 4)


class NodeId(NamedTuple):
    """One channel of one site, written ``site:index``."""

    site: str
    index: int

    def __str__(self) -> str:
        return f"{self.site}:{self.index}"

    @classmethod
    def parse(cls, text: str) -> "NodeId":
        site, sep, idx = text.strip().rpartition(":")
        if not sep or not idx.isdigit():
            raise UserError(f"bad node {text!r}; write nodes as SITE:INDEX, e.g. blocks.0.mlp.neuron:12")
        parse_site(site)
        return cls(site, int(idx))

    def validate(self, cfg: ModelConfig) -> "NodeId":
        width = site_width(cfg, self.site)
        if not 0 <= self.index < width:
            raise UserError(f"node {self}: index out of range, {self.site} has channels 0..{width - 1}")
        return self


# ---------------------------------------------------------------------------------------------
# Interventions

Hook = Callable[["object"], "object"]  # tensor -> tensor

_HOOKS: ContextVar[Mapping[str, tuple[Hook, ...]] | None] = ContextVar("circuit_inspector_hooks", default=None)


def active_hooks() -> Mapping[str, tuple[Hook, ...]] | None:
    """The hooks installed for the current call (None when none): the model's fast path checks this."""
    return _HOOKS.get()


def recorders(names: Iterable[str]) -> tuple[dict[str, Hook], dict[str, object]]:
    """(hooks, captured): hooks for :func:`intervene` that leave each named site's value unchanged and
    keep it in ``captured`` (by name), as the forward used it after the hooks installed before them."""
    captured: dict[str, object] = {}

    def keep(name: str) -> Hook:
        def hook(x):
            captured[name] = x
            return x
        return hook
    return {name: keep(name) for name in names}, captured


@contextlib.contextmanager
def intervene(hooks: Mapping[str, Hook]) -> Iterator[None]:
    """Install ``{site_or_point_name: fn(tensor) -> tensor}`` for the duration of the block.

    Nested calls compose: an inner hook runs after the outer hooks on the same site. Names are sites
    (``blocks.0.mlp.neuron``) or extra points such as norm scales (``blocks.0.ln1.scale``,
    ``ln_f.scale``). The state lives in a ContextVar, so other threads and other calls are unaffected.
    """
    outer = _HOOKS.get() or {}
    merged = dict(outer)
    for name, fn in hooks.items():
        merged[name] = tuple(merged.get(name, ())) + (fn,)
    token = _HOOKS.set(merged)
    try:
        yield
    finally:
        _HOOKS.reset(token)
