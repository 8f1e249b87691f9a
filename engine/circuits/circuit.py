"""Circuits: a set of kept nodes and the nonzero weights between them (SPEC §6).

Weight edges of the model (each one nonzero weight):

* ``attn.read:i -> attn.q|k|v:j``   fused qkv projection, row j of the q/k/v part, column i
* ``attn.v:c    -> attn.write:d``   output projection (the head channel c carries attention-mixed v)
* ``mlp.read:i  -> mlp.neuron:j``   MLP input projection
* ``mlp.neuron:j -> mlp.write:d``   MLP output projection

Circuit size is the number of weight edges whose two endpoints are both kept. Residual links
(a write channel reaching later reads of the same channel) and q.k pairings are connections for
display, not weights, and are not counted. JSON (with schema_version) and GraphML io.
Knows nothing about pruning or Qt.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import networkx as nx
import numpy as np
import torch

from engine.errors import UserError
from engine.fileio import atomic_write, atomic_write_json, check_name, read_json
from engine.model import GPT
from engine.sites import NodeId, SITE_KINDS, all_sites, parse_site, site_name, site_width

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class EdgeSet:
    """Weight edges as parallel arrays: src/dst node ids as strings, and the weight."""

    src: tuple[str, ...]
    dst: tuple[str, ...]
    weight: np.ndarray  # (E,) float32

    def __len__(self) -> int:
        return len(self.src)


def _matrix_edges(w: torch.Tensor, src_site: str, dst_site: str, rows: np.ndarray | None = None,
                  cols: np.ndarray | None = None):
    """Edges of a weight matrix w (out, in): input channel (column) -> output channel (row).

    ``rows``/``cols`` restrict to kept output/input channels."""
    w = w.detach().cpu()
    if rows is not None:
        w = w[torch.as_tensor(rows, dtype=torch.long)]
    if cols is not None:
        w = w[:, torch.as_tensor(cols, dtype=torch.long)]
    r, c = torch.nonzero(w, as_tuple=True)
    vals = w[r, c].float().numpy()
    r_ids = rows[r.numpy()] if rows is not None else r.numpy()
    c_ids = cols[c.numpy()] if cols is not None else c.numpy()
    return ([f"{src_site}:{i}" for i in c_ids], [f"{dst_site}:{j}" for j in r_ids], vals)


def weight_edges(model: GPT, nodes: Iterable[NodeId] | None = None) -> EdgeSet:
    """All nonzero-weight edges of the model, or only those between ``nodes`` (both ends kept)."""
    cfg = model.cfg
    inner = cfg.n_head * cfg.d_head
    keep: dict[str, np.ndarray] | None = None
    if nodes is not None:
        by_site: dict[str, list[int]] = {}
        for n in nodes:
            by_site.setdefault(n.site, []).append(n.index)
        keep = {s: np.array(sorted(set(by_site.get(s, []))), dtype=np.int64) for s in all_sites(cfg)}

    def sel(site: str):
        return None if keep is None else keep[site]

    src: list[str] = []
    dst: list[str] = []
    vals: list[np.ndarray] = []
    for layer, blk in enumerate(model.blocks):
        s = lambda kind: site_name(layer, kind)  # noqa: E731
        w_qkv = blk.attn.c_attn.weight
        for part, kind in enumerate(("attn.q", "attn.k", "attn.v")):
            rows = sel(s(kind))
            part_w = w_qkv[part * inner:(part + 1) * inner]
            a, b, v = _matrix_edges(part_w, s("attn.read"), s(kind), rows, sel(s("attn.read")))
            src += a; dst += b; vals.append(v)  # noqa: E702
        for w, kin, kout in ((blk.attn.c_proj.weight, "attn.v", "attn.write"),
                             (blk.mlp.c_fc.weight, "mlp.read", "mlp.neuron"),
                             (blk.mlp.c_proj.weight, "mlp.neuron", "mlp.write")):
            a, b, v = _matrix_edges(w, s(kin), s(kout), sel(s(kout)), sel(s(kin)))
            src += a; dst += b; vals.append(v)  # noqa: E702
    weight = np.concatenate(vals).astype(np.float32) if vals else np.zeros(0, np.float32)
    return EdgeSet(tuple(src), tuple(dst), weight)


@dataclass(frozen=True)
class Circuit:
    """A pruned circuit for one task of one model. Immutable; safe to pass between threads."""

    task: str
    nodes: tuple[NodeId, ...]
    edges: EdgeSet
    model_hash: str
    run: str = ""
    name: str = "circuit"
    metrics: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    sites: tuple[str, ...] = ()  # the sites it was pruned over (others are kept whole); () = the block sites

    def pruned_sites(self, cfg) -> list[str]:
        """The sites whose nodes outside the circuit are ablated: :attr:`sites`, else the block sites."""
        return list(self.sites) if self.sites else all_sites(cfg)

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    def node_set(self) -> frozenset[NodeId]:
        return frozenset(self.nodes)

    def nodes_per_site(self) -> dict[str, int]:
        return dict(sorted(Counter(n.site for n in self.nodes).items()))

    def summary(self) -> dict[str, Any]:
        return {"task": self.task, "name": self.name, "nodes": self.n_nodes, "edges": self.n_edges,
                "nodes_per_site": self.nodes_per_site(), **{k: v for k, v in self.metrics.items()
                                                             if not isinstance(v, (dict, list))}}

    def to_graph(self) -> nx.DiGraph:
        g = nx.DiGraph(task=self.task, name=self.name, model_hash=self.model_hash)
        for n in self.nodes:
            layer, kind = parse_site(n.site)
            g.add_node(str(n), site=n.site, index=n.index, layer=layer, kind=kind,
                       label=self.labels.get(str(n), ""))
        for a, b, w in zip(self.edges.src, self.edges.dst, self.edges.weight.tolist()):
            g.add_edge(a, b, weight=float(w), kind="weight")
        return g

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "kind": "circuit", "task": self.task, "name": self.name,
            "run": self.run, "model_hash": self.model_hash,
            "nodes": [str(n) for n in self.nodes],
            "edges": [[a, b, float(w)] for a, b, w in zip(self.edges.src, self.edges.dst, self.edges.weight.tolist())],
            "metrics": _jsonable(self.metrics), "settings": _jsonable(self.settings), "labels": dict(self.labels),
            **({"sites": list(self.sites)} if self.sites else {}),
        }

    def save(self, path: Path) -> Path:
        atomic_write_json(Path(path), self.to_dict())
        return Path(path)

    def save_graphml(self, path: Path) -> Path:
        atomic_write(Path(path), lambda tmp: nx.write_graphml(self.to_graph(), str(tmp)))
        return Path(path)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    return obj


def make_circuit(model: GPT, task: str, nodes: Iterable[NodeId], model_hash: str, **kw: Any) -> Circuit:
    nodes = tuple(sorted(set(nodes), key=node_sort_key))
    return Circuit(task=task, nodes=nodes, edges=weight_edges(model, nodes), model_hash=model_hash, **kw)


def node_sort_key(n: NodeId) -> tuple[int, int, int]:
    layer, kind = parse_site(n.site)
    return layer, SITE_KINDS.index(kind) if kind in SITE_KINDS else len(SITE_KINDS), n.index


def load_circuit(path: Path, model: GPT | None = None, model_hash: str | None = None) -> Circuit:
    """Read a circuit JSON. With a model, check it fits (sites, index ranges, hash)."""
    data = read_json(Path(path), what="circuit file")
    if not isinstance(data, dict) or data.get("kind") != "circuit":
        raise UserError(f"{path} is not a circuit file (expected a JSON object with \"kind\": \"circuit\")")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise UserError(f"{path}: circuit schema_version {data.get('schema_version')!r} is not supported "
                        f"(expected {SCHEMA_VERSION})")
    try:
        nodes = tuple(NodeId.parse(n) for n in data["nodes"])
        edges = data["edges"]
        es = EdgeSet(tuple(_text(e[0]) for e in edges), tuple(_text(e[1]) for e in edges),
                     np.array([float(e[2]) for e in edges], dtype=np.float32))
        if not np.isfinite(es.weight).all():
            raise ValueError("an edge weight is not a finite number")
        for key in ("metrics", "settings", "labels"):
            if not isinstance(data.get(key, {}), dict):
                raise TypeError(f"{key} must be a JSON object, got {type(data[key]).__name__}")
        circ = Circuit(task=str(data["task"]), nodes=nodes, edges=es, model_hash=str(data.get("model_hash", "")),
                       run=str(data.get("run", "")), name=str(data.get("name", Path(path).stem)),
                       metrics=dict(data.get("metrics", {})), settings=dict(data.get("settings", {})),
                       labels={str(k): str(v) for k, v in dict(data.get("labels", {})).items()},
                       sites=tuple(str(s) for s in data.get("sites", ())))
        for s in circ.sites:
            parse_site(s)
    except (KeyError, TypeError, IndexError, ValueError, AttributeError, OverflowError) as exc:
        raise UserError(f"{path} is not a valid circuit file ({type(exc).__name__}: {exc})") from None
    problem = _edge_problem(circ) or _metric_problem(circ.metrics, "metrics")
    if problem:
        raise UserError(f"{path} is not a valid circuit file: {problem}; was it edited by hand? prune again, "
                        f"or restore the file")
    if model is not None:
        for n in nodes:
            try:
                if circ.sites and n.site not in circ.sites:
                    raise UserError(f"node {n} is outside the circuit's sites")
                n.validate(model.cfg)
            except UserError as exc:
                raise UserError(f"{path} was made for another model: {exc}") from None
    if model_hash is not None and circ.model_hash and circ.model_hash != model_hash:
        raise UserError(f"{path} was made for another model (model hash {circ.model_hash[:12]}, this run's is "
                        f"{model_hash[:12]}); prune this run again")
    return circ


def _edge_problem(circ: Circuit) -> str:
    """What is wrong with the circuit's edges (an end that is not one of its nodes: every weight edge
    joins two kept nodes), else ''."""
    names = {str(n) for n in circ.nodes}
    for i, (a, b) in enumerate(zip(circ.edges.src, circ.edges.dst)):
        unknown = a if a not in names else b if b not in names else None
        if unknown is not None:
            return f"edge {i} ({a} -> {b}) names {unknown!r}, which is not one of the circuit's nodes"
    return ""


#: Metric names whose values (and everything inside them: a list or an object of values) are numbers
#: or null; any name ending in one of the suffixes too.
NUMERIC_METRICS = {"loss", "k_coef", "seconds", "n_pairs", "n_random", "edges", "nodes", "model_nodes",
                   "calibration_scale", "num_total_nodes", "active_after_training"}
NUMERIC_SUFFIXES = ("_loss", "_losses", "_accuracy", "_mean", "_std", "_share")


def _metric_problem(value: Any, where: str, numeric: bool = False) -> str:
    """Where a number belongs in a circuit's metrics but something else is (a string that would reach
    arithmetic or formatting), else ''."""
    if isinstance(value, dict):
        for k, v in value.items():
            key_numeric = numeric or k in NUMERIC_METRICS or str(k).endswith(NUMERIC_SUFFIXES)
            problem = _metric_problem(v, f"{where}.{k}", key_numeric)
            if problem:
                return problem
    elif isinstance(value, list):
        for i, v in enumerate(value):
            problem = _metric_problem(v, f"{where}[{i}]", numeric)
            if problem:
                return problem
    elif numeric and value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"{where} must be a number, got {value!r}"
    return ""


def all_nodes(model: GPT, final: bool = False) -> list[NodeId]:
    """Every node of the block sites (with ``final``, and of final_resid)."""
    return [NodeId(s, i) for s in all_sites(model.cfg, final=final) for i in range(site_width(model.cfg, s))]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a node id string, got {value!r}")
    return value


def _number(value: Any) -> float | None:
    """A metric as a float when it is a number, else None (a damaged file's strings never reach a format)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def circuit_dir(derived: Path, task: str) -> Path:
    """``<derived>/circuits/<task>``; a task name that is not one folder name is a UserError."""
    return Path(derived) / "circuits" / check_name(task, "task name")


def list_circuits(*roots: Path) -> list[Path]:
    """Circuit files under ``<root>/circuits/<task>/*.json`` for each root (bundled and derived)."""
    out: list[Path] = []
    for root in roots:
        out += sorted((Path(root) / "circuits").glob("*/*.json"))
    return out


@dataclass(frozen=True)
class CircuitEntry:
    """One saved circuit, as a list shows it (``name``: the file name without .json)."""

    path: Path
    task: str
    name: str
    nodes: int
    edges: int
    circuit_loss: float | None
    target_loss: float | None
    task_file: str | None


def index_circuits(*roots: Path) -> list[CircuitEntry]:
    """:func:`list_circuits` with each file's task, name, size and losses; files that do not read as
    circuits are left out."""
    out = []
    for path in list_circuits(*roots):
        try:
            c = load_circuit(path)
        except UserError:
            continue
        task_file = c.settings.get("task_file")
        out.append(CircuitEntry(path, c.task, path.stem, c.n_nodes, c.n_edges, _number(c.metrics.get("circuit_loss")),
                                _number(c.metrics.get("target_loss")), task_file if isinstance(task_file, str) else None))
    return out


def geometric_mean(values: Iterable[float]) -> float:
    vals = [max(1e-9, float(v)) for v in values]
    return float(math.exp(sum(math.log(v) for v in vals) / len(vals))) if vals else float("nan")
