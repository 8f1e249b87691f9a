import json
import subprocess
import sys

import pytest

from engine.cli.main import main


def run_cli(*args):
    proc = subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("args,match", [
    (["train", "--preset", "huge", "--out", "X"], "invalid choice"),
    (["train", "--preset", "tiny", "--set", "sparsity.density=3", "--out", "X"], "density must be in"),
    (["train", "--preset", "tiny", "--set", "train.stepz=3", "--out", "X"], "unknown config key"),
    (["info", "/definitely/not/a/run"], "run folder not found"),
])
def test_user_errors_are_one_line_exit_2(args, match, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err
    assert "Traceback" not in err


def test_missing_corpus_in_a_subprocess(tmp_path):
    code, out, err = run_cli("train", "--preset", "tiny", "--corpus", str(tmp_path / "nope"), "--out", str(tmp_path / "r"))
    assert code == 2
    assert "error: corpus folder not found" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_existing_run_without_resume(tmp_path, corpus_dir, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep").write_text("x")
    assert main(["train", "--preset", "tiny", "--corpus", str(corpus_dir), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "keep").read_text() == "x"


def test_train_then_info_json(tmp_path, corpus_dir, capsys):
    out = tmp_path / "r"
    assert main(["train", "--preset", "tiny", "--steps", "10", "--corpus", str(corpus_dir), "--out", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps_done"] == 10 and summary["corpus_files"] == 12
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["parameters"] > 0 and info["config"]["train"]["steps"] == 10
    assert main(["info", str(out)]) == 0
    assert "density" in capsys.readouterr().out


def test_prune_errors(trained_tiny, tmp_path, capsys):
    run = str(trained_tiny[0])
    assert main(["prune", run, "--task", "no_such_task"]) == 2
    assert "unknown task" in capsys.readouterr().err
    assert main(["prune", run]) == 2
    assert "exactly one of --task" in capsys.readouterr().err
    # the untrained-ish tiny model cannot do the task: a clear message, not a useless circuit
    assert main(["prune", run, "--task", "single_double_quote", "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "above the target" in err and "Traceback" not in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "circuit", "schema_version": 1, "task": "x", "nodes": ["blocks.9.mlp.neuron:1"], "edges": []}')
    assert main(["faithfulness", run, str(bad)]) == 2
    assert "another model" in capsys.readouterr().err


def test_tasks_and_eval_tasks(trained_tiny, capsys):
    assert main(["tasks", "--json"]) == 0
    names = [t["name"] for t in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["tasks"]]
    assert {"single_double_quote", "bracket_counting", "set_or_string", "bracket_brace", "if_equals",
            "for_while"} <= set(names)
    assert main(["eval-tasks", str(trained_tiny[0]), "--tasks", "single_double_quote", "--pairs", "16", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["tasks"]
    assert rows[0]["task"] == "single_double_quote" and 0 <= rows[0]["accuracy"] <= 1 and rows[0]["loss"] > 0


def test_prune_faithfulness_and_ablate_end_to_end(trained_tiny, capsys):
    """The whole CLI path on the tiny run; a loose target so the barely trained model passes."""
    run = str(trained_tiny[0])
    assert main(["prune", run, "--task", "single_double_quote", "--steps", "3", "--target-loss", "5",
                 "--k-coefs", "0.01", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["circuit_loss"] <= 5 and out["nodes"] >= 1
    assert {"sufficiency_loss", "necessity_loss", "random_loss"} <= set(out)
    assert main(["faithfulness", run, "single_double_quote", "--pairs", "16", "--json"]) == 0
    faith = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert faith["nodes"] == out["nodes"] and faith["mean"]["n_random"] == 10
    assert main(["ablate", run, "--task", "single_double_quote", "--circuit", "single_double_quote",
                 "--nodes", "blocks.0.mlp.neuron:1", "--pairs", "8", "--json"]) == 0
    ab = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ab["baseline"] == "circuit" and ab["n_sequences"] == 16
    assert main(["ablate", run, "--task", "single_double_quote", "--nodes", "blocks.0.mlp.neuron:999"]) == 2
    assert "0..127" in capsys.readouterr().err


def test_sigterm_cancels_a_training_with_a_checkpoint(tmp_path, corpus_dir):
    """kill / a batch scheduler's preemption: the training stops with a checkpoint and says how to resume."""
    import os
    import signal

    out = tmp_path / "r"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "train", "--preset", "tiny", "--steps", "100000",
                             "--corpus", str(corpus_dir), "--out", str(out), "--print-every", "0"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stderr:  # wait until steps are running
            if line.startswith("step") and "/100000" in line and " 0/" not in line:
                break
        proc.send_signal(signal.SIGTERM)
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
    assert "resume with: circuit-engine train --resume" in err and "Traceback" not in err
    assert list((out / "checkpoints").glob("step_*.safetensors"))
