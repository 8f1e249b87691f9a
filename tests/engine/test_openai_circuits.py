"""OpenAI's released circuit files (issue 16, part 5) as our circuits: the nodes and weights the
reference lists, their stored losses halved, and live ablation of the imported circuit (with
final_resid ablated outside it, as they prune it) reproducing the losses their file stores. The
fixtures live in ../shared/fixtures/openai (VIZ_FORMAT.md there)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.ablation.ablator import Ablator
from engine.circuits.circuit import list_circuits, load_circuit
from engine.errors import UserError
from engine.interop.openai_circuits import import_viz_circuits, read_viz, site_of
from engine.interop.openai_import import import_openai
from engine.runs import load_run
from engine.sites import FINAL_RESID, all_sites

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / ".." / "shared" / "fixtures" / "openai"
VIZ = "viz/fx_a_tied_2L/single_double_quote/prune_v2/16/viz_data.pt"


def _fixtures() -> Path:
    if not (FIXTURES / "viz").is_dir():
        pytest.skip(f"{FIXTURES.resolve()} not found: the OpenAI fixtures live in ../shared (CI has them)")
    return FIXTURES


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((_fixtures() / "reference" / "viz_expected.json").read_text())


@pytest.fixture(scope="module")
def run_with_circuit(tmp_path_factory) -> tuple[Path, list[dict]]:
    f = _fixtures()
    run = tmp_path_factory.mktemp("viz") / "fx_a"
    import_openai(f / "models" / "fx_a_tied_2L", run, f / "tinypython")
    return run, import_viz_circuits(f / "viz" / "fx_a_tied_2L", run)


def _ours(key: str) -> str:
    loc, _, idx = key.rpartition(":")
    return f"{site_of(loc, 'test')}:{idx}"


def test_nodes_edges_and_halved_losses_are_the_references(run_with_circuit, expected) -> None:
    run_dir, summary = run_with_circuit
    [entry] = summary
    assert Path(entry["path"]) == run_dir / "circuits" / "single_double_quote" / "openai-prune_v2-16.json"
    run = load_run(run_dir)
    c = load_circuit(Path(entry["path"]), run.model, run.model_hash)
    want = {n["project_node"] or f"{FINAL_RESID}:{n['index']}" for n in expected["nodes"]}
    assert {str(n) for n in c.nodes} == want and c.n_nodes == expected["n_nodes"] == 16
    edges = {(a, b): float(w) for a, b, w in zip(c.edges.src, c.edges.dst, c.edges.weight)}
    assert set(edges) == {(_ours(e["src"]), _ours(e["dst"])) for e in expected["edges"]}
    for e in expected["edges"]:
        assert edges[(_ours(e["src"]), _ours(e["dst"]))] == pytest.approx(e["weight"], abs=1e-6)
    stored = expected["losses_stored"]
    assert c.metrics["full_loss"] == pytest.approx(stored["loss"] / 2)
    assert c.metrics["circuit_loss"] == pytest.approx(stored["interv_loss"] / 2)
    for n in expected["nodes"]:
        key = n["project_node"] or f"{FINAL_RESID}:{n['index']}"
        assert c.metrics["node_losses"][key] == pytest.approx(n["ch_interv_loss"] / 2)
    assert set(c.sites) == set(all_sites(run.config.model, final=True))
    assert c.settings["source"] == "openai" and c.settings["sha256"] == expected["sha256"]
    assert Path(entry["path"]) in list_circuits(run_dir)


def test_live_ablation_of_the_imported_circuit_reproduces_their_stored_losses(run_with_circuit, expected) -> None:
    """With their means, task documents and targets, our Ablator gives the full model's and the
    circuit's losses their file stores (halved): final_resid outside the circuit is ablated too."""
    run_dir, [entry] = run_with_circuit
    run = load_run(run_dir)
    circuit = load_circuit(Path(entry["path"]), run.model, run.model_hash)
    tokens = read_viz(_fixtures() / VIZ)["importances"]["task_samples"][0].numpy().astype(np.int64)
    task = expected["task"]
    half = tokens.shape[0] // 2
    a, b = task["target_class1"], task["target_class2"]
    enc = SimpleNamespace(tokens=tokens, lengths=np.array(task["lengths"]), target=np.array([a] * half + [b] * half),
                          foil=np.array([b] * half + [a] * half))
    means = {site_of(loc, "test"): torch.tensor(v, dtype=torch.float32)
             for loc, v in expected["mean_ablation_values"].items()}
    ab = Ablator(run.model, enc, means, circuit=circuit)
    stored = expected["losses_stored"]
    assert ab.evaluate().loss == pytest.approx(stored["loss"] / 2, abs=1e-5)
    assert ab.evaluate(baseline="circuit").loss == pytest.approx(stored["interv_loss"] / 2, abs=1e-5)
    assert ab.evaluate_naive(baseline="circuit").loss == pytest.approx(stored["interv_loss"] / 2, abs=1e-5)
    final = [n for n in circuit.nodes if n.site == FINAL_RESID]
    assert ab.evaluate(final[:1], baseline="circuit").loss != pytest.approx(ab.evaluate(baseline="circuit").loss)


def _viz_copy(tmp_path: Path, data: bytes | None = None) -> Path:
    viz = tmp_path / "viz" / "fx_a_tied_2L"
    target = viz / "single_double_quote" / "prune_v2" / "16" / "viz_data.pt"
    target.parent.mkdir(parents=True)
    if data is None:
        shutil.copyfile(_fixtures() / VIZ, target)
    else:
        target.write_bytes(data)
    return viz


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(_Payload.marker),))


def test_bad_circuit_files_are_one_user_error_and_write_nothing(run_with_circuit, tmp_path) -> None:
    run_dir, _ = run_with_circuit
    marker = tmp_path / "pwned"
    _Payload.marker = str(marker)
    evil = io.BytesIO()
    torch.save({"circuit_data": {"0.attn.q": torch.tensor([1])}, "x": _Payload()}, evil)
    truncated = (_fixtures() / VIZ).read_bytes()[:5000]
    other = dict(read_viz(_fixtures() / VIZ))
    other["circuit_data"] = {**other["circuit_data"], "0.attn.q": torch.tensor([9999])}
    wrong_range = io.BytesIO()
    torch.save(other, wrong_range)
    cases = [(b"not a zip at all", "not a PyTorch checkpoint"), (truncated, "not a PyTorch checkpoint"),
             (evil.getvalue(), "which circuit-engine never unpickles"), (wrong_range.getvalue(), "out of range")]
    for i, (data, match) in enumerate(cases):
        viz = _viz_copy(tmp_path / str(i), data)
        before = sorted(p.name for p in (run_dir / "circuits").rglob("*.json"))
        with pytest.raises(UserError, match=match):
            import_viz_circuits(viz, run_dir)
        assert sorted(p.name for p in (run_dir / "circuits").rglob("*.json")) == before
    assert not marker.exists()
    assert zipfile.is_zipfile(io.BytesIO(evil.getvalue()))


def test_a_circuit_of_another_model_is_refused(tmp_path) -> None:
    f = _fixtures()
    other = tmp_path / "fx_c"
    import_openai(f / "models" / "fx_c_catpos_layernorm_relu", other)
    with pytest.raises(UserError, match="another model"):
        import_viz_circuits(_viz_copy(tmp_path / "v"), other)
    assert not (other / "circuits").exists()
