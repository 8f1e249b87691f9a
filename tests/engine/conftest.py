"""Shared fixtures for engine tests: tiny configs and a tiny corpus folder (no stdlib scan)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.config import ModelConfig, RunConfig, preset, run_config_from_dict

SAMPLE = '''
def greet(name, greeting="hello"):
    """Say hello."""
    message = f"{greeting}, {name}!"
    print(message)
    return message


class Counter:
    def __init__(self, start=0):
        self.count = start

    def add(self, n):
        for i in range(n):
            self.count += 1
        return self.count


items = [[1, 2], [3, 4]]
table = {"a": 1, 'b': 2}
while items:
    x = items.pop()
    if x == [1, 2]:
        break
'''


def pytest_runtest_setup(item):
    """Tests marked ``gpu`` run only where CUDA is available."""
    if item.get_closest_marker("gpu") is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs CUDA")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request) -> str:
    """Run a test on the CPU and, marked ``gpu``, on CUDA."""
    return request.param


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    return make_corpus(tmp_path / "corpus")


@pytest.fixture
def micro_model_cfg() -> ModelConfig:
    return ModelConfig(vocab_size=50, n_layer=2, d_model=32, d_mlp=64, d_head=16, n_ctx=16)


def make_corpus(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i in range(12):
        (d / f"mod_{i}.py").write_text(SAMPLE.replace("greet", f"greet_{i}") * 6)
    return d


def _tiny_config(corpus_dir: Path, **train) -> RunConfig:
    cfg = run_config_from_dict({"data": {"folders": [str(corpus_dir)]}}, base=preset("tiny"))
    return replace(cfg, train=replace(cfg.train, **train)) if train else cfg


@pytest.fixture(scope="session")
def tiny_config():
    """Factory: the tiny preset on a small test corpus, with optional train.* overrides."""
    return _tiny_config


@pytest.fixture(scope="session")
def corpus_factory():
    return make_corpus


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory):
    """One tiny training shared by the session: (run_dir, events, TrainResult)."""
    from engine.train.loop import run_to_end, train

    root = tmp_path_factory.mktemp("tiny")
    corpus = make_corpus(root / "corpus")
    events = []
    result = run_to_end(train(root / "run", _tiny_config(corpus)), events.append)
    return root / "run", events, result
