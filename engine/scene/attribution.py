"""Attribution on one pair, for drawing (issue 18, "Attribution"): each weight's contribution on the
selected pair, from a traced pair (:class:`engine.mechanism.trace.PairTrace`: activations at every
position and every head's attention), with numpy only, so the window can colour any graph at once.

An edge ``src -> dst`` with weight ``w`` contributes ``w * s`` to what ``dst`` computes at the
prompt's last position (the position whose next token the task scores), where ``s`` is its source's
signal there:

* into a query, an MLP neuron or an MLP write: the source's activation at the last position;
* into a key or a value (from the attention read): the read's activation at each position, weighted
  by where the destination's head attends from the last position, ``sum_t a(last, t) * read(t)``;
* from a value into the attention write: the head's mixed output in that channel,
  ``sum_t a(last, t) * v(t)``.

So on the quote task the key weights that carry the opening quote's type light up, through the
attention on the quote. Values per side: (2, E), A in row 0, B in row 1; :func:`shown` picks what a
view shows (A, B, or their difference A - B, which is what separates the two sides). Knows nothing
about Qt; imports torch only inside :func:`run_trace` (the headless ``circuit-engine trace``).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from engine.scene.layout import FINAL_KIND, KINDS, GraphData, ModelShape, build_graph
from engine.sites import FINAL_RESID, site_name

SIDES = ("A", "B", "A-B")  # what an attribution view shows: one side, or the difference
_K = {k: i for i, k in enumerate(KINDS)}
_LAST_POSITION = {_K["attn.q"], _K["mlp.neuron"], _K["mlp.write"]}  # destinations read at the last position
_ATTENDED = {_K["attn.k"], _K["attn.v"], _K["attn.write"]}  # destinations whose source is mixed by attention


def edge_attribution(graph: GraphData, trace) -> np.ndarray:
    """(2, n_edges) float32: each weight of ``graph`` times its source's signal on sides A and B of
    ``trace`` (see the module docstring); 0 where the trace lacks the source's site."""
    out = np.zeros((2, graph.n_edges), np.float32)
    if graph.n_edges == 0:
        return out
    src, dst = graph.src.astype(np.int64), graph.dst.astype(np.int64)
    layer, skind, dkind = graph.layer[src], graph.kind[src], graph.kind[dst]
    last = trace.last  # (2,)
    rows = np.arange(2)
    # one group per (layer, source kind, destination kind): a handful of vectorised gathers
    groups = np.stack([layer, skind, dkind], 1)
    for lyr, sk, dk in np.unique(groups, axis=0):
        sel = np.flatnonzero((layer == lyr) & (skind == sk) & (dkind == dk))
        acts = trace.acts.get(site_name(int(lyr), KINDS[int(sk)]))
        if acts is None:
            continue
        ch = graph.channel[src[sel]].astype(np.int64)
        if dk in _LAST_POSITION:
            signal = acts[rows, last][:, ch]  # (2, n)
        elif dk in _ATTENDED:
            head_ch = ch if dk == _K["attn.write"] else graph.channel[dst[sel]].astype(np.int64)
            heads = head_ch // max(1, trace.d_head)
            att = trace.patterns[int(lyr)][rows, :, last]  # (2, H, T): from each side's last position
            a = np.nan_to_num(acts)  # (2, T, width); NaN after a prompt's end carries weight 0 anyway
            signal = (att[:, heads, :] * np.transpose(a[:, :, ch], (0, 2, 1))).sum(-1)  # (2, n)
        else:
            continue
        out[:, sel] = graph.weight[sel][None, :] * np.nan_to_num(signal)
    return out


def node_effects(graph: GraphData, trace) -> np.ndarray:
    """(2, n_nodes) float64: each node's estimated effect on sides A and B of ``trace`` (NaN where
    the trace lacks its site), gathered per site (no per-node lookups: a whole model is 91k nodes)."""
    out = np.full((2, graph.n_nodes), np.nan)
    for site, effects in trace.effects.items():
        if site == FINAL_RESID:
            sel = np.flatnonzero(graph.kind == FINAL_KIND)
        else:
            layer, kind = site.split(".", 2)[1:]
            sel = np.flatnonzero((graph.kind == _K.get(kind, -1)) & (graph.layer == int(layer)))
        ch = graph.channel[sel].astype(np.int64)
        ok = ch < effects.shape[-1]
        out[:, sel[ok]] = effects[:, ch[ok]]
    return out


def shown(values: np.ndarray, side: str) -> np.ndarray:
    """(n,) what a view draws from (2, n) per-side values: side A, side B or A - B."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    if side == "A":
        return values[0]
    if side == "B":
        return values[1]
    return values[0] - values[1]


def run_trace(run_dir, task: str | None = None, pair: int = 0, n_pairs: int = 24, circuit: str | None = None,
              baseline: str = "full", ablate: Iterable[str] = (), mode: str = "mean", nodes: Iterable[str] = (),
              top: int = 10, task_file=None, heads: Iterable[tuple[int, int]] = ()) -> dict[str, Any]:
    """The ``circuit-engine trace`` result: pair ``pair`` of the task's held-out pairs traced under
    ``baseline`` and the ``ablate`` nodes (:func:`engine.mechanism.trace.trace_pair`): the requested
    ``nodes`` at every position of A and B, the ``top`` node effects (estimated), the full attention
    pattern of each ``(layer, head)`` in ``heads`` on A and B and, with a circuit, every circuit weight's
    attribution on A and B (:mod:`engine.scene.attribution`)."""
    from engine.ablation.setup import run_ablator
    from engine.circuits.circuit import load_circuit
    from engine.circuits.library import find_circuit
    from engine.data.tokenizer import _piece
    from engine.errors import UserError
    from engine.mechanism.trace import trace_pair
    from engine.runs import load_run
    from engine.tasks.evaluate import resolve_task_arg

    run = load_run(run_dir)
    if baseline == "circuit" and not circuit:
        raise UserError("--baseline circuit needs --circuit (a circuit name or file)")
    if not 0 <= pair < n_pairs:
        raise UserError(f"--pair {pair} is out of range: with --pairs {n_pairs} the pairs are 0-{n_pairs - 1}")
    t = resolve_task_arg(task, task_file)
    circ = load_circuit(find_circuit(run, circuit), run.model, run.model_hash) if circuit else None
    ablator, enc = run_ablator(run, t, circ, n_pairs)
    tr = trace_pair(ablator, pair, list(ablate), (), mode, baseline)
    wanted = list(nodes)
    for n in wanted:
        if tr.positions(n) is None:
            raise UserError(f"--node {n!r} is not a node of this model (write SITE:INDEX, e.g. blocks.0.mlp.neuron:12)")
    toks = [[_piece(run.tokenizer, i) for i in side] for side in tr.tokens]
    scope = {str(n) for n in circ.nodes} if circ is not None else None
    effects = [(f"{s}:{i}", e[:, i]) for s, e in tr.effects.items() for i in np.flatnonzero(np.abs(e).sum(0))
               if scope is None or f"{s}:{i}" in scope]
    effects.sort(key=lambda p: -float(np.abs(p[1]).sum()))
    out = {"run": str(run.path), "task": t.name, "pair": pair, "pairs": n_pairs, "baseline": baseline,
           "circuit": f"{circ.task}/{circ.name}" if circ else None, "ablated": list(ablate), "mode": mode,
           "tokens": {"A": toks[0], "B": toks[1]},
           "logit_diff": {"A": float(tr.logit_diff[0]), "B": float(tr.logit_diff[1])},
           "nodes": {n: {side: [None if np.isnan(v) else float(v) for v in tr.positions(n)[i, :tr.lengths[i]]]
                         for i, side in enumerate("AB")} for n in wanted},
           "effects_estimated": [{"node": n, "A": float(e[0]), "B": float(e[1])} for n, e in effects[:top]],
           "edges": [], "patterns": _patterns(tr, heads, run.config.model)}
    if circ is not None:
        g = build_graph(ModelShape.from_config(run.config.model), [str(n) for n in circ.nodes], circ.edges.src,
                        circ.edges.dst, circ.edges.weight)
        att = edge_attribution(g, tr)
        order = np.argsort(-np.abs(att[0] - att[1]), kind="stable")
        out["edges"] = [{"src": g.ids[g.src[i]], "dst": g.ids[g.dst[i]], "weight": float(g.weight[i]),
                         "A": float(att[0, i]), "B": float(att[1, i])} for i in order]
    return out


def _patterns(trace, heads: Iterable[tuple[int, int]], cfg) -> dict[str, Any]:
    """``{"L1.H6": {"A": rows, "B": rows}}``: each head's attention on each prompt, one row per query
    position over the key positions up to it (the rest of a row is the sink's share)."""
    from engine.errors import UserError

    out = {}
    for layer, head in heads:
        if not (0 <= layer < cfg.n_layer and 0 <= head < cfg.n_head):
            raise UserError(f"--pattern {layer}:{head}: this model has layers 0-{cfg.n_layer - 1} and heads "
                            f"0-{cfg.n_head - 1}")
        p = trace.pattern(layer, head)
        out[f"L{layer}.H{head}"] = {side: [[float(v) for v in p[i, q, :q + 1]] for q in range(n)]
                                    for i, (side, n) in enumerate(zip("AB", trace.lengths))}
    return out
