"""OpenAI's released pruned circuits (``viz/<model>/<task>/<sweep>/<k>/viz_data.pt``) as our circuit
files: ``circuits/<task>/openai-<sweep>-<k>.json`` in an imported run.

What is read (structure in the OpenAI fixtures' VIZ_FORMAT.md; only ``circuit_data`` is required):

* ``circuit_data``: location -> kept channel indices. Locations map to our sites
  (``{L}.attn.act_in`` -> ``blocks.L.attn.read``, ``q``/``k``/``v``, ``resid_delta`` -> ``write``,
  ``{L}.mlp.act_in`` -> ``mlp.read``, ``post_act`` -> ``mlp.neuron``, ``final_resid`` -> ``final_resid``).
  Their pruning masks every block site *and* ``final_resid``, so the circuit records those sites:
  a ``final_resid`` channel outside it is ablated too, as in theirs.
* ``importances``: ``loss`` (full model), ``interv_loss`` (the circuit), ``ch_interv_losses`` and
  ``layer_interv_losses``. Their files store every task loss doubled (two sides summed), so the
  circuit file holds them halved: the per-sequence loss our metrics use.
* ``importances.beeg_model_config``: checked against the run (a circuit of another model is refused).

The file is read with ``torch.load(weights_only=True)`` after a zip check, and nothing is built from
it but plain numbers and node ids. Edges are the run's own nonzero weights between the kept nodes.
Knows nothing about Qt or the app.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import torch

from engine.circuits.circuit import load_circuit, make_circuit
from engine.errors import UserError
from engine.interop.openai_format import FINAL_RESID_HOOK, HOOK_SITES
from engine.interop.openai_read import safe_torch_load
from engine.runs import load_run
from engine.sites import FINAL_RESID, NodeId, all_sites, site_width

VIZ_FILE = "viz_data.pt"
_LOC = re.compile(r"^(\d+)\.(attn\.(?:act_in|q|k|v|resid_delta)|mlp\.(?:act_in|post_act|resid_delta))$")
_SHAPE_KEYS = ("n_layer", "n_head", "d_head", "d_model", "d_mlp")


def site_of(loc: str, source: str) -> str:
    """Their node location -> our site name; UserError for an unknown one."""
    if loc == FINAL_RESID_HOOK:
        return FINAL_RESID
    m = _LOC.match(str(loc))
    if not m:
        raise UserError(f"{source}: unknown node location {loc!r} (expected L.attn.act_in ... L.mlp.resid_delta "
                        f"or {FINAL_RESID})")
    return f"blocks.{m.group(1)}.{HOOK_SITES[m.group(2)]}"


def read_viz(path: Path) -> dict[str, Any]:
    """The file's top-level dict, loaded without unpickling anything but tensors and plain containers."""
    data = safe_torch_load(path, "an OpenAI circuit file")
    if not isinstance(data, dict) or not isinstance(data.get("circuit_data"), dict):
        raise UserError(f"{path} is not an OpenAI circuit file: no circuit_data dict at its top level")
    return data


def _indices(value: Any, loc: str, source: str) -> list[int]:
    if not isinstance(value, torch.Tensor) or value.dim() > 1 or value.dtype.is_floating_point or value.is_complex():
        raise UserError(f"{source}: circuit_data[{loc!r}] must be a 1-D integer tensor")
    out = [int(i) for i in value.reshape(-1).tolist()]
    if len(set(out)) != len(out):
        raise UserError(f"{source}: circuit_data[{loc!r}] lists a channel twice")
    return out


def circuit_nodes(data: dict[str, Any], cfg, source: str) -> tuple[list[NodeId], dict[str, str]]:
    """Our node ids of the kept channels, and a map from their ``loc:index`` names to ours."""
    nodes: list[NodeId] = []
    names: dict[str, str] = {}
    for loc, value in data["circuit_data"].items():
        site = site_of(loc, source)
        width = site_width(cfg, site)
        for i in _indices(value, loc, source):
            if not 0 <= i < width:
                raise UserError(f"{source}: channel {i} of {loc} is out of range for this model (0..{width - 1}); "
                                "is the circuit for another model?")
            node = NodeId(site, i)
            nodes.append(node)
            names[f"{loc}:{i}"] = str(node)
    return nodes, names


def check_model(data: dict[str, Any], cfg, source: str) -> None:
    """The circuit's own model config (when stored) must have this run's shape."""
    theirs = (data.get("importances") or {}).get("beeg_model_config") if isinstance(data.get("importances"), dict) else None
    if not isinstance(theirs, dict):
        return
    ours = {"n_layer": cfg.n_layer, "n_head": cfg.n_head, "d_head": cfg.d_head, "d_model": cfg.d_model,
            "d_mlp": cfg.d_mlp}
    if theirs.get("d_head") is None and isinstance(theirs.get("n_head"), int) and isinstance(theirs.get("d_model"), int):
        theirs = {**theirs, "d_head": theirs["d_model"] // max(1, theirs["n_head"])}
    if theirs.get("d_mlp") is None and isinstance(theirs.get("d_model"), int):
        theirs = {**theirs, "d_mlp": 4 * theirs["d_model"]}
    bad = [f"{k} {theirs.get(k)} (run: {ours[k]})" for k in _SHAPE_KEYS if k in theirs and theirs[k] != ours[k]]
    if bad:
        raise UserError(f"{source} is a circuit of another model: {', '.join(bad)}")


def _halved(value: Any) -> float | None:
    try:
        return float(value) / 2.0
    except (TypeError, ValueError):
        return None


def circuit_metrics(data: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """Their stored losses, halved to our per-sequence units, keyed by our node ids."""
    imp = data.get("importances") if isinstance(data.get("importances"), dict) else {}
    metrics: dict[str, Any] = {"loss_units": "per-sequence two-way task loss (OpenAI's stored values / 2)"}
    full, circuit = _halved(imp.get("loss")), _halved(imp.get("interv_loss"))
    if full is not None:
        metrics["full_loss"] = full
    if circuit is not None:
        metrics["circuit_loss"] = circuit
    node_losses = {}
    for loc, losses in (imp.get("ch_interv_losses") or {}).items():
        kept = [n for key, n in names.items() if key.rsplit(":", 1)[0] == loc]
        values = losses.tolist() if isinstance(losses, torch.Tensor) else losses
        if isinstance(values, (list, tuple)) and len(values) == len(kept):
            node_losses.update({n: _halved(v) for n, v in zip(kept, values)})
    if node_losses:
        metrics["node_losses"] = node_losses
    layers = {str(k): _halved(v) for k, v in (imp.get("layer_interv_losses") or {}).items()}
    if layers:
        metrics["layer_losses"] = layers
    if isinstance(data.get("num_total_nodes"), int):
        metrics["num_total_nodes"] = data["num_total_nodes"]
    return metrics


def viz_files(viz_dir: Path) -> list[tuple[str, str, str, Path]]:
    """(task, sweep, k, path) of every ``<task>/<sweep>/<k>/viz_data.pt`` under a model's viz folder."""
    viz_dir = Path(viz_dir)
    if not viz_dir.is_dir():
        raise UserError(f"circuit folder not found: {viz_dir} (expected viz/<model>/ with <task>/<sweep>/<k>/{VIZ_FILE})")
    found = sorted(viz_dir.glob(f"*/*/*/{VIZ_FILE}"))
    if not found:
        raise UserError(f"{viz_dir} holds no circuit files (<task>/<sweep>/<k>/{VIZ_FILE})")
    return [(p.parts[-4], p.parts[-3], p.parts[-2], p) for p in found]


def _safe_name(part: str, what: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", part) or part in (".", ".."):
        raise UserError(f"{what} {part!r} cannot name a file (letters, digits, _ . - only)")
    return part


def import_viz_circuits(viz_dir: Path | str, run_dir: Path | str, run_label: str | None = None) -> list[dict[str, Any]]:
    """Convert every circuit file of a model's viz folder into the run's ``circuits/<task>/``.
    Returns one summary per circuit; raises UserError (nothing written) if any file is bad.
    ``run_label``: the run folder the circuits name (when ``run_dir`` is a folder about to be renamed)."""
    run = load_run(run_dir)
    cfg = run.config.model
    sites = tuple(all_sites(cfg, final=True))
    circuits = []
    for task, sweep, k, path in viz_files(Path(viz_dir)):
        data = read_viz(path)
        check_model(data, cfg, str(path))
        nodes, names = circuit_nodes(data, cfg, str(path))
        name = f"openai-{_safe_name(sweep, 'sweep')}-{_safe_name(k, 'k')}"
        settings = {"source": "openai", "file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                    "task": task, "sweep": sweep, "k": k, "ablation": "mean",
                    "note": "pruned by OpenAI over every block site and final_resid; edges are this run's weights"}
        if isinstance(data.get("prune_config"), dict):
            settings["prune_config"] = {str(a): b for a, b in data["prune_config"].items()
                                        if isinstance(b, (int, float, str, bool)) or b is None}
        circuits.append(make_circuit(run.model, _safe_name(task, "task"), nodes, run.model_hash,
                                     run=run_label or str(run.path),
                                     name=name, metrics=circuit_metrics(data, names), settings=settings, sites=sites))
    out = []
    for c in circuits:  # every file was readable: now write them
        path = c.save(Path(run.path) / "circuits" / c.task / f"{c.name}.json")
        load_circuit(path, run.model, run.model_hash)  # what was written reads back
        out.append({"path": str(path), "task": c.task, "name": c.name, "nodes": c.n_nodes, "edges": c.n_edges,
                    "circuit_loss": c.metrics.get("circuit_loss"), "full_loss": c.metrics.get("full_loss")})
    return out
