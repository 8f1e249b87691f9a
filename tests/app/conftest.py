"""Fixtures for the app tests: keep QSettings away from the user's real settings.

Every test gets its own settings folder (``QSettings.setPath`` for the user scope, native and INI
formats) and a distinct organisation name, so geometry saved by one test never leaks into another
and nothing is written under ``~/.config/CircuitInspector``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QSettings


@pytest.fixture(autouse=True)
def isolated_qsettings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Point QSettings (and XDG_CONFIG_HOME for subprocesses) at a fresh temporary folder."""
    settings_dir: Path = tmp_path_factory.mktemp("qsettings")
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(settings_dir))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(settings_dir))
    old_org = QCoreApplication.organizationName()
    QCoreApplication.setOrganizationName("CircuitInspectorTests")
    yield settings_dir
    QCoreApplication.setOrganizationName(old_org)



# ---------------------------------------------------------------------------------------------
# A tiny real run (random weights, no training) with a circuit, for in-process and subprocess tests.

TASK = "single_double_quote"
SAMPLE = '''
def greet(name, greeting="hello"):
    message = f"{greeting}, {name}!"
    table = {"a": 1, 'b': 2}
    return message
'''


def make_tiny_run(root: Path, circuit: bool = True, store: bool = False) -> Path:
    """A run folder with random tiny-preset weights, a hand-made circuit for ``TASK`` (with made-up
    faithfulness numbers) and, optionally, a small activation store."""
    from dataclasses import replace

    import torch

    from engine import api
    from engine.checkpoint import save_model
    from engine.config import preset, run_config_from_dict
    from engine.fileio import atomic_write_json
    from engine.model import GPT
    from engine.data.tokenizer import CharTokenizer, save_tokenizer

    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for i in range(8):
        (corpus / f"m{i}.py").write_text(SAMPLE.replace("greet", f"greet_{i}") * 8)
    run = root / "run"
    run.mkdir()
    cfg = run_config_from_dict({"data": {"folders": [str(corpus)]}}, base=preset("tiny"))
    tok = CharTokenizer()
    cfg = replace(cfg, model=replace(cfg.model, vocab_size=tok.vocab_size)).validate()
    save_tokenizer(tok, run / "tokenizer.json")
    atomic_write_json(run / "config.json", cfg.to_dict())
    torch.manual_seed(0)
    model = GPT(cfg.model)
    with torch.no_grad():  # sparse like a real run: ~1/4 of each matrix nonzero
        for name, p in model.named_parameters():
            if p.dim() == 2 and "blocks" in name:
                p.mul_((torch.rand_like(p) < 0.25).float())
    save_model(run, model)
    if circuit:
        loaded = api.load_run(run)
        nodes = [api.NodeId(site, i) for site in api.all_sites(loaded.config.model) for i in (0, 1, 5, 9)]
        faith = {m: {"full_loss": 0.69, "sufficiency_loss": 0.7, "necessity_loss": 0.9, "random_loss_mean": 0.69,
                     "random_loss_std": 0.01} for m in ("mean", "zero")}
        circ = api.make_circuit(loaded.model, TASK, nodes, loaded.model_hash, settings={"ablation": "mean"},
                                name="mean", metrics={"target_loss": 0.15, "faithfulness": faith})
        out = run / "circuits" / TASK / "mean.json"
        out.parent.mkdir(parents=True)
        circ.save(out)
    if store:
        record_tiny_store(run)
    return run


def record_tiny_store(run: Path) -> Path:
    from engine import api

    gen = api.record_store(run, n_tokens=2000, tasks=[TASK], n_pairs=16, batch_size=8, top_k=8)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run with a circuit and no store (tests must not write into it; copy it first)."""
    return make_tiny_run(tmp_path_factory.mktemp("tiny_app_run"))


@pytest.fixture(scope="session")
def tiny_run_with_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_run(tmp_path_factory.mktemp("tiny_app_store"), store=True)


@pytest.fixture
def fresh_tiny_run(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny run (means included) that a test may change."""
    import shutil

    from engine import api

    api.load_means(api.load_run(tiny_run))  # compute the means once, in the shared run
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


@pytest.fixture
def tiny_run_factory():
    """``make_tiny_run`` for tests that need a variant (no circuit, a store...)."""
    return make_tiny_run


@pytest.fixture(autouse=True)
def no_worker_thread_left_running():
    """After every test (its widgets are closed first by pytest-qt) no thread of ours may still run:
    a QThread freed while running aborts the whole process."""
    yield
    from app.workers.latest import LIVE_THREADS

    running = sorted(t.objectName() for t in LIVE_THREADS if t.isRunning())
    assert not running, f"worker threads still running after the test: {running}"


LOAD_TIMEOUT_MS = 120_000


@pytest.fixture
def errors(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Error dialogs shown during the test, as (title, text); no modal dialog opens."""
    from app.widgets import dialogs

    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(dialogs, "show_error", lambda parent, title, text: calls.append((title, text)))
    return calls


@pytest.fixture
def open_window(qtbot):
    """Factory: a shown 1400x900 MainWindow with ``run`` loaded (waits for its ready signal);
    keyword arguments go to ``MainWindow.load_run`` (task, task_file, circuit)."""
    from app.window.main_window import MainWindow

    def _open(run: Path | str, **load):
        win = MainWindow(persist_settings=False)
        qtbot.addWidget(win)
        win.resize(1400, 900)
        win.show()
        qtbot.waitExposed(win)
        with qtbot.waitSignal(win.ready, timeout=LOAD_TIMEOUT_MS):
            assert win.load_run(run, **load)
        return win

    return _open


@pytest.fixture(autouse=True)
def warnings_shown(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Warning boxes shown during the test, as (title, text); no modal box ever opens."""
    from app.widgets import dialogs

    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(dialogs, "show_warning", lambda parent, title, text: calls.append((title, text)))
    return calls


class Questions(list):
    """Yes/no questions the app asked, as (title, text); each is answered with ``answer``."""

    answer = True


@pytest.fixture(autouse=True)
def questions(monkeypatch: pytest.MonkeyPatch) -> Questions:
    """No modal yes/no question ever blocks a test (closing a window during a job asks one): each is
    recorded and answered with ``questions.answer`` (yes unless a test says otherwise)."""
    from app.widgets import dialogs

    asked = Questions()

    def ask(parent, title: str, text: str) -> bool:
        asked.append((title, text))
        return asked.answer

    monkeypatch.setattr(dialogs, "ask_yes_no", ask)
    return asked
