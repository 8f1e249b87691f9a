"""kill -9 during ``circuit-engine record``, ``prune`` and ``train`` (issue 19, "Faults"): the
artifacts an earlier job (or the killed training's own checkpoints) wrote are byte-identical
afterwards, a rerun of the same command (a resume) succeeds, and no temporary file (``.partial`` store, ``.<name>.<random>.tmp``) survives
the rerun.

The job runs in a subprocess (``python -m engine.cli``) on a tiny run with random weights (no
training: a second to make) and is killed with SIGKILL once its stderr shows it is working. A
temporary file of an atomic write names its writer (pid and host), so the next write of the same
file removes a killed writer's at once; nothing is aged here.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.fileio import _WRITER

TASK = "single_double_quote"
WAIT_S = 120  # for the subprocess to start working (imports torch, builds the task data)


@pytest.fixture
def run(tmp_path: Path, corpus_factory) -> Path:
    """A tiny run with random, sparse weights (what recording and pruning read; nothing trained)."""
    import torch

    from engine.checkpoint import save_model
    from engine.config import preset, run_config_from_dict
    from engine.data.tokenizer import CharTokenizer, save_tokenizer
    from engine.fileio import atomic_write_json
    from engine.model import GPT

    corpus = corpus_factory(tmp_path / "corpus")
    out = tmp_path / "run"
    out.mkdir()
    tok = CharTokenizer()
    cfg = run_config_from_dict({"data": {"folders": [str(corpus)]}}, base=preset("tiny"))
    cfg = replace(cfg, model=replace(cfg.model, vocab_size=tok.vocab_size)).validate()
    save_tokenizer(tok, out / "tokenizer.json")
    atomic_write_json(out / "config.json", cfg.to_dict())
    torch.manual_seed(0)
    model = GPT(cfg.model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "blocks" in name:
                p.mul_((torch.rand_like(p) < 0.25).float())
    save_model(out, model)
    return out


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> digest)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[Path]:
    """Temporary files under ``folder``: a store's ``.partial``, an atomic write's ``.*.tmp``."""
    return sorted(p for p in folder.rglob("*") if p.name.endswith((".partial", ".tmp")))


def kill_when(args: list[str], started, where: Path) -> list[str]:
    """Run ``circuit-engine ARGS``, SIGKILL it once a stderr line satisfies ``started(line, where)``,
    and return the lines it printed. Fails if it ends (or does not start working) by itself."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", *args], stderr=subprocess.PIPE, text=True,
                            env=env)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + WAIT_S
        for line in proc.stderr:
            lines.append(line)
            if started(line, where) or time.monotonic() > deadline:
                break
        assert proc.poll() is None, f"the job ended before it could be killed:\n{''.join(lines)}"
        assert started(lines[-1], where), f"the job did not start working in {WAIT_S} s:\n{''.join(lines)}"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    return lines


def test_kill_9_during_record_keeps_the_old_store_and_a_rerun_succeeds(run: Path, capsys) -> None:
    from engine.store.activations import ActivationStore, partial_path

    store = run / "activations.h5"
    small = ["record", str(run), "--tokens", "1024", "--tasks", TASK, "--pairs", "8", "--top-k", "4",
             "--batch-size", "8"]
    assert main(small) == 0
    before = digests(run)
    with ActivationStore.open(store) as s:
        tokens_before = s.n_tokens

    def recording(line: str, out: Path) -> bool:  # its windows are being written into the .partial file
        return "recording" in line and "tokens" in line and partial_path(out).exists()

    kill_when(["record", str(run), "--tokens", "5000000", "--tasks", TASK, "--pairs", "8", "--print-every", "0"],
              recording, store)
    assert partial_path(store).exists()  # what a killed recorder leaves; readers refuse it
    assert digests(run).items() >= before.items(), "the kill changed the store recorded before"
    with ActivationStore.open(store) as s:
        assert s.n_tokens == tokens_before

    capsys.readouterr()
    assert main(small + ["--tokens", "2048"]) == 0, capsys.readouterr().err
    assert leftovers(run) == []
    with ActivationStore.open(store) as s:
        assert s.n_tokens == 2048


def test_kill_9_during_prune_keeps_the_old_circuit_and_a_rerun_succeeds(run: Path, capsys) -> None:
    from engine.circuits.circuit import load_circuit, make_circuit
    from engine.runs import load_run
    from engine.sites import NodeId

    circuit = run / "circuits" / TASK / "mean.json"
    loaded = load_run(run)  # an earlier circuit of the task (made directly: quicker than a prune)
    make_circuit(loaded.model, TASK, [NodeId("blocks.0.mlp.neuron", 1)], loaded.model_hash, name="mean",
                 settings={"ablation": "mean"}).save(circuit)
    before = digests(run)

    def pruning(line: str, _where: Path) -> bool:  # the node masks are being trained
        return "k_coef" in line and "step" in line

    kill_when(["prune", str(run), "--task", TASK, "--steps", "1000000", "--target-loss", "5", "--k-coefs", "0.01",
               "--pairs", "16"], pruning, run)
    assert digests(run).items() >= before.items(), "the kill changed the run's files"  # (means may be new)
    # A kill during the circuit's own atomic write leaves its temporary file, named after its (now dead)
    # writer: the next write removes it at once.
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    killed_write = circuit.parent / f".{circuit.name}.w{dead}@{_WRITER.partition('@')[2]}.k9x2zq.tmp"
    killed_write.write_text('{"kind": "circ')
    kept = {k: v for k, v in digests(run).items() if not k.endswith(".tmp") and k != str(circuit.relative_to(run))}

    capsys.readouterr()
    assert main(["prune", str(run), "--task", TASK, "--steps", "3", "--target-loss", "5", "--k-coefs", "0.01",
                 "--pairs", "16"]) == 0, capsys.readouterr().err
    assert leftovers(run) == []
    assert load_circuit(circuit).task == TASK and digests(run)[str(circuit.relative_to(run))] != before[
        str(circuit.relative_to(run))]  # the rerun wrote its own circuit
    assert digests(run).items() >= kept.items()  # model, config, tokenizer, means untouched


def test_kill_9_during_train_keeps_its_checkpoints_and_a_resume_succeeds(tmp_path: Path, corpus_factory,
                                                                         capsys) -> None:
    from engine.train.setup import train_status

    corpus = corpus_factory(tmp_path / "corpus")
    out = tmp_path / "run"

    def checkpointed(line: str, _where: Path) -> bool:  # a checkpoint is on disk; the next steps are running
        return line.startswith("step") and "checkpoint" in line

    kill_when(["train", "--preset", "tiny", "--steps", "100000", "--corpus", str(corpus), "--out", str(out),
               "--set", "train.checkpoint_interval=2", "--print-every", "0"], checkpointed, out)
    done = train_status(out).steps_done
    assert done >= 2
    before = {k: v for k, v in digests(out).items() if k.startswith("checkpoints/step_")}
    assert before
    capsys.readouterr()
    assert main(["train", "--resume", "--steps", str(done + 2), "--out", str(out)]) == 0, capsys.readouterr().err
    assert leftovers(out) == [] and train_status(out).steps_done == done + 2
    after = digests(out)
    assert all(after.get(k) == v for k, v in before.items() if int(k.split("_")[-1].split(".")[0]) <= done)
