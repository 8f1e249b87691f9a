from dataclasses import replace

import pytest
import torch

from engine.api import run_info
from engine.checkpoint import list_checkpoints, load_tensors
from engine.errors import UserError
from engine.runs import load_run, read_log
from engine.train.loop import run_to_end, train


def _weights(run_dir):
    return load_tensors(run_dir / "model.safetensors")


def test_tiny_training_lowers_validation_loss(trained_tiny):
    run_dir, events, result = trained_tiny
    evals = [e for e in events if e.kind == "eval"]
    assert evals[0].step == 0 and evals[-1].step == result.total_steps
    assert evals[-1].val_loss < evals[0].val_loss - 1.0
    assert not result.cancelled and result.steps_done == 150
    steps = [e for e in events if e.kind in ("step", "eval")]
    assert all(e.tokens_per_s >= 0 and e.eta_s >= 0 or e.step == 0 for e in steps)
    assert events[-1].kind == "done"


def test_info_reports_density_at_target(trained_tiny):
    run_dir, _, _ = trained_tiny
    info = run_info(run_dir)
    assert info["matrix_density"] == pytest.approx(0.25, rel=0.01)
    for kind in ("attn.qkv", "attn.out", "mlp.in", "mlp.out"):
        assert info["density"][kind]["density"] == pytest.approx(0.25, rel=0.01)
    assert info["density"]["embed"]["density"] == pytest.approx(1.0, rel=0.01)  # min(1, 4 * 0.25)
    assert info["steps_done"] == 150 and info["complete"]
    assert info["val_loss"] is not None
    assert [c for c in info["checkpoints"]] == [50, 100, 150]


def test_run_loads_for_inference(trained_tiny):
    run = load_run(trained_tiny[0])
    ids = torch.from_numpy(run.tokenizer.encode("def f(x):\n    return x")).long()[None]
    assert run.model(ids).shape == (1, ids.shape[1], run.config.model.vocab_size)
    assert any(e["kind"] == "eval" for e in read_log(run.path))


def test_resume_equals_uninterrupted(tmp_path, corpus_dir, tiny_config):
    cfg = tiny_config(corpus_dir, steps=24, checkpoint_interval=8, eval_interval=8)
    full = tmp_path / "full"
    run_to_end(train(full, cfg))

    part = tmp_path / "part"
    gen = train(part, cfg)
    for ev in gen:
        if ev.kind in ("step", "eval") and ev.step >= 11:
            break
    gen.close()  # cancel: the generator writes a checkpoint of the last completed step
    cks = list_checkpoints(part)
    assert cks and cks[-1].step >= 11
    resumed = run_to_end(train(part, resume=True))
    assert resumed.steps_done == 24
    a, b = _weights(full), _weights(part)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6, rtol=0), k


def test_dense_twin_keeps_every_weight(tmp_path, corpus_dir, tiny_config):
    cfg = tiny_config(corpus_dir, steps=6, eval_interval=3, checkpoint_interval=3)
    cfg = replace(cfg, sparsity=replace(cfg.sparsity, enabled=False))
    run_to_end(train(tmp_path / "dense", cfg))
    assert run_info(tmp_path / "dense")["matrix_density"] > 0.99


def test_existing_run_folder_is_not_overwritten(tmp_path, corpus_dir, tiny_config):
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(UserError, match="already exists"):
        next(train(out, tiny_config(corpus_dir)))
    assert (out / "precious.txt").read_text() == "keep me"


def test_resume_without_run_and_with_other_config(tmp_path, corpus_dir, tiny_config):
    with pytest.raises(UserError, match="cannot resume"):
        next(train(tmp_path / "nothing", resume=True))
    cfg = tiny_config(corpus_dir, steps=4, eval_interval=2, checkpoint_interval=2)
    run_to_end(train(tmp_path / "r", cfg))
    with pytest.raises(UserError, match="stored config"):
        next(train(tmp_path / "r", replace(cfg, train=replace(cfg.train, steps=8)), resume=True))


def test_cuda_request_without_cuda(tmp_path, corpus_dir, tiny_config):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(UserError, match="CUDA is not available"):
        next(train(tmp_path / "r", tiny_config(corpus_dir), device="cuda"))


@pytest.mark.gpu
def test_tiny_training_on_cuda(tmp_path, corpus_dir, tiny_config):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    cfg = tiny_config(corpus_dir, steps=20, eval_interval=10, checkpoint_interval=10)
    res = run_to_end(train(tmp_path / "r", cfg, device="cuda"))
    assert res.steps_done == 20 and res.final_val_loss < 4.0
