"""Training under torchrun: 2 gloo processes on CPU against 1 process, masks, resume, bad rendezvous.

The multi-process tests start the real command users run (``torchrun ... -m engine.cli train``, as
``python -m torch.distributed.run``, which is what the ``torchrun`` script calls) with
``--standalone``, so the rendezvous takes a free port. One thread per process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine.checkpoint import list_checkpoints
from engine.config import ModelConfig, SparsityConfig
from engine.train.distributed import SINGLE, DistContext, from_main, gather_to_main, mask_checksum, resolve_device, split_jobs
from engine.errors import UserError
from engine.model import GPT
from engine.runs import read_log
from engine.sparsity import WeightSparsifier
from engine.train.loop import run_to_end, train

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **extra)
    return env


def torchrun(*args: str, nproc: int = 2, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT)


def _losses(run_dir: Path) -> dict[int, tuple[float, float]]:
    """step -> (train loss of that step, validation loss) from a run logged with eval_interval 1."""
    return {e["step"]: (e["train_loss"], e["val_loss"]) for e in read_log(run_dir)
            if e["kind"] == "eval" and e["step"] > 0}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus_factory, tiny_config):
    """One process, 10 steps, a loss logged at every step: (config, config file, run dir, losses)."""
    root = tmp_path_factory.mktemp("reference")
    cfg = tiny_config(corpus_factory(root / "corpus"), steps=10, eval_interval=1, eval_batches=2,
                      checkpoint_interval=5)
    run_to_end(train(root / "one", cfg))
    cfg_file = root / "cfg.json"
    cfg_file.write_text(json.dumps(cfg.to_dict()))
    return cfg, cfg_file, root / "one", _losses(root / "one")


def _drop_last_checkpoint(run_dir: Path) -> None:
    """Go back one checkpoint: drop the last one, and model.safetensors with it (a resume never goes
    below the step the model file holds; engine/train/resume.py)."""
    last = list_checkpoints(run_dir)[-1].weights
    last.unlink()
    last.with_suffix(".json").unlink()
    (run_dir / "model.safetensors").unlink()


def test_two_processes_match_one_process_and_resume_on_one(tmp_path, reference):
    _, cfg_file, _, a = reference
    two = tmp_path / "two"
    proc = torchrun("-m", "engine.cli", "train", "--config", str(cfg_file), "--out", str(two), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # only rank 0 prints: one JSON summary, one "finished" line
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["steps_done"] == 10
    assert proc.stderr.count("finished:") == 1
    b = _losses(two)
    assert sorted(b) == list(range(1, 11))  # one log line per step: a single writer
    for step in range(1, 11):
        assert b[step][0] == pytest.approx(a[step][0], abs=1e-4), step  # the global-batch training loss
        assert b[step][1] == pytest.approx(a[step][1], abs=1e-4), step  # validation, sharded over ranks
    cks = list_checkpoints(two)
    assert [c.step for c in cks] == [5, 10] and all(c.meta["world_size"] == 2 for c in cks)

    # resume the 2-process run from step 5 on one process: same global batch, same losses
    _drop_last_checkpoint(two)
    events = []
    result = run_to_end(train(two, resume=True), events.append)
    assert result.steps_done == 10
    assert any("trained on 2 process(es), on 1" in e.message for e in events)
    c = _losses(two)
    for step in range(6, 11):
        assert c[step][0] == pytest.approx(a[step][0], abs=1e-4), step
    assert list_checkpoints(two)[-1].meta["world_size"] == 1


def two_nodes(*args: str, timeout: float = 120) -> list[tuple[int, str, str]]:
    """The several-machines command of the README, with both "machines" on this one: two torchrun
    agents (node ranks 0 and 1, one process each) meeting at --rdzv-endpoint."""
    endpoint = f"127.0.0.1:{_free_port()}"
    procs = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node-rank={n}",
                               "--nproc_per_node=1", f"--rdzv-endpoint={endpoint}", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT,
                              start_new_session=True)  # its own process group: a kill reaches its worker too
             for n in (0, 1)]
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    except subprocess.TimeoutExpired:  # say where each node was, rather than only that node 0 timed out
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
        tails = [f"node {n} (exit {p.wait()}): stdout {out[-500:]!r}, stderr {err[-4000:]!r}"
                 for n, (p, (out, err)) in enumerate(zip(procs, (p.communicate() for p in procs)))]
        pytest.fail(f"two torchrun nodes did not finish within {timeout:.0f} s:\n" + "\n".join(tails))
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs)]


def test_resume_on_two_machines_from_one_process(tmp_path, reference):
    """Rank 0 reads the checkpoint and hands it (weights and Adam moments) to the other node, which
    has no run folder; only node 0 prints and writes."""
    _, _, one, a = reference
    run = tmp_path / "run"
    shutil.copytree(one, run)
    _drop_last_checkpoint(run)
    (rc0, out0, err0), (rc1, out1, err1) = two_nodes("-m", "engine.cli", "train", "--resume", "--out", str(run),
                                                      "--json")
    assert rc0 == 0 and rc1 == 0, (err0[-2000:], err1[-2000:])
    assert "trained on 1 process(es), on 2" in err0 and json.loads(out0.strip().splitlines()[-1])["steps_done"] == 10
    assert out1.strip() == "" and "step" not in err1
    b = _losses(run)
    assert sorted(b) == list(range(1, 11))
    for step in range(6, 11):
        assert b[step][0] == pytest.approx(a[step][0], abs=1e-4), step
        assert b[step][1] == pytest.approx(a[step][1], abs=1e-4), step


def test_mask_mismatch_stops_every_rank(tmp_path):
    script = tmp_path / "masks.py"
    script.write_text(
        "import torch\n"
        "from engine.config import ModelConfig, SparsityConfig\n"
        "from engine.train.distributed import launch, verify_masks\n"
        "from engine.errors import UserError\n"
        "from engine.model import GPT\n"
        "from engine.sparsity import WeightSparsifier\n"
        "with launch(timeout_s=60) as ctx:\n"
        "    m = GPT(ModelConfig(vocab_size=20, n_layer=1, d_model=16, d_mlp=32, n_ctx=8))\n"
        "    m.reset_parameters(seed=0)\n"
        "    sp = WeightSparsifier(m, SparsityConfig(density=0.25))\n"
        "    sp.project(1.0)\n"
        "    verify_masks(ctx, sp.params, 1)\n"
        "    print(f'rank {ctx.rank}: step 1 ok', flush=True)\n"
        "    if ctx.rank == 1:\n"
        "        with torch.no_grad():\n"
        "            w = sp.params[1]\n"
        "            w[w == 0] = 1e-3  # this replica keeps other weights\n"
        "    try:\n"
        "        verify_masks(ctx, sp.params, 2)\n"
        "        print(f'rank {ctx.rank}: step 2 ok', flush=True)\n"
        "    except UserError as exc:\n"
        "        print(f'rank {ctx.rank}: {type(exc).__name__}: {exc}', flush=True)\n")
    proc = torchrun(str(script))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "rank 0: step 1 ok" in out and "rank 1: step 1 ok" in out and "step 2 ok" not in out
    # rank 0 reports the error; rank 1 stops with the same message, marked as reported elsewhere
    assert "rank 0: CircuitInspectorError: top-k weight masks differ between ranks at step 2" in out
    assert "rank 1: PeerError: top-k weight masks differ between ranks at step 2" in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("rank,message", [
    (1, "error: rank 1: cannot reach the rendezvous at 127.0.0.1:"),  # nobody listens at the endpoint
    (0, "error: rank 0 of 2 could not join the process group"),  # the peer never comes
])
def test_unreachable_rendezvous_is_an_error_within_the_timeout(tmp_path, corpus_dir, rank, message):
    env = _env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(_free_port()))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "train", "--preset", "tiny", "--corpus",
                           str(corpus_dir), "--out", str(tmp_path / "r"), "--dist-timeout", "2"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert elapsed < 2 + 20  # the timeout plus interpreter start-up, not torch's default 30 minutes
    assert not (tmp_path / "r").exists()


def test_mask_checksum_sees_the_pattern_not_the_values():
    m = GPT(ModelConfig(vocab_size=20, n_layer=1, d_model=16, d_mlp=32, n_ctx=8))
    m.reset_parameters(seed=0)
    sp = WeightSparsifier(m, SparsityConfig(density=0.25))
    sp.project(1.0)
    base = mask_checksum(sp.params)
    with torch.no_grad():
        sp.params[2].mul_(1.5)  # same zeros, other values
    assert mask_checksum(sp.params) == base
    with torch.no_grad():
        w = sp.params[2]
        i = int((w == 0).flatten().nonzero()[0])
        w.view(-1)[i] = 0.1  # one more nonzero
    assert mask_checksum(sp.params) != base


def test_single_process_helpers_and_job_split():
    assert not SINGLE.active and SINGLE.is_main and SINGLE.mean(2.5) == 2.5
    assert from_main(SINGLE, lambda: 7, lambda v: ({}, {}), lambda h, b: -1) == 7
    assert gather_to_main(SINGLE, {"a": 1}, {"x": b"\x00\x01"}) == [({"a": 1}, {"x": b"\x00\x01"})]
    jobs = list(range(7))
    shares = [split_jobs(jobs, DistContext(rank=r, world_size=3)) for r in range(3)]
    assert shares == [[0, 3, 6], [1, 4], [2, 5]]
    assert sorted(sum(shares, [])) == jobs
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_request_without_cuda_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(UserError, match="CUDA is not available"):
        resolve_device("cuda")


@pytest.mark.gpu
def test_two_processes_on_two_gpus(tmp_path, corpus_dir, tiny_config):
    """NCCL: the same comparison on CUDA (bf16 autocast, so a looser tolerance than on CPU)."""
    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA devices")
    cfg = tiny_config(corpus_dir, steps=10, eval_interval=1, eval_batches=2, checkpoint_interval=5)
    run_to_end(train(tmp_path / "one", cfg, device="cuda"))
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfg.to_dict()))
    proc = torchrun("-m", "engine.cli", "train", "--config", str(cfg_file), "--out", str(tmp_path / "two"),
                    "--device", "cuda", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    for step in range(1, 11):
        assert b[step][0] == pytest.approx(a[step][0], abs=2e-2), step


# ---------------------------------------------------------------------------------------------
# prune-all


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, corpus_factory, tiny_config):
    root = tmp_path_factory.mktemp("small")
    run_to_end(train(root / "run", tiny_config(corpus_factory(root / "corpus"), steps=10)))
    return root / "run"


PRUNE_OPTS = ["--steps", "3", "--k-coefs", "0.01", "0.03", "--target-loss", "1.0", "--pairs", "32"]


def _circuit(path: str) -> dict:
    return json.loads(Path(path).read_text())


def test_prune_all_on_two_processes_equals_the_sequential_sweep(small_run, capsys):
    """4 jobs (2 tasks x 2 k_coefs) over 2 gloo processes give the circuits of `circuit-engine prune`."""
    from engine.cli.main import main

    run = str(small_run)
    seq = []
    for task in ("single_double_quote", "bracket_counting"):
        assert main(["prune", run, "--task", task, *PRUNE_OPTS, "--name", "seq", "--json"]) == 0
        seq.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    proc = torchrun("-m", "engine.cli", "prune-all", run, "--tasks", "single_double_quote,bracket_counting",
                    *PRUNE_OPTS, "--name", "par", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1  # rank 0 alone prints
    par = json.loads(lines[0])
    assert par["world_size"] == 2 and [t["status"] for t in par["tasks"]] == ["ok", "ok"]
    for s, p in zip(seq, par["tasks"]):
        a, b = _circuit(s["circuit"]), _circuit(p["circuit"])
        assert a["task"] == b["task"] == p["task"]
        assert a["nodes"] == b["nodes"] and a["edges"] == b["edges"]
        # every k_coef's candidate (held-out loss, nodes left active by mask training), the loss
        # curve along the best ranking and the faithfulness numbers: identical, not just close
        for key in ("candidates", "curve", "circuit_loss", "full_loss", "k_coef", "faithfulness"):
            assert a["metrics"][key] == b["metrics"][key], key


def test_prune_all_skips_tasks_and_rejects_unknown_ones(small_run, capsys):
    from engine.cli.main import main

    run = str(small_run)
    assert main(["prune-all", run, "--tasks", "single_double_quote", *PRUNE_OPTS[:4], "--target-loss", "0.01",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["tasks"][0]["status"] == "skipped" and "above the target" in out["tasks"][0]["message"]
    assert main(["prune-all", run, "--tasks", "single_double_quote,no_such_task"]) == 2
    assert "unknown task" in capsys.readouterr().err
