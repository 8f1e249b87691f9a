import numpy as np
import pytest

from engine.config import DataConfig
from engine.data.corpus import TokenData, read_sources, snippet_budget
from engine.errors import UserError


def test_undecodable_files_are_skipped_and_counted(tmp_path, corpus_dir):
    (corpus_dir / "bad.py").write_bytes(b"x = '\xff\xfe\xfa'\n")
    src = read_sources(DataConfig(folders=(str(corpus_dir),)))
    assert src.stats.n_skipped == 1 and src.stats.n_files == 12
    assert src.train and src.val


def test_split_is_deterministic_and_disjoint(tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(200):
        (d / f"f{i}.py").write_text(f"value_{i} = {i}\n" * 5)
    cfg = DataConfig(folders=(str(d),), val_frac=0.1)
    a, b = read_sources(cfg), read_sources(cfg)
    assert a.train == b.train and a.val == b.val
    assert 5 <= a.stats.n_val_files <= 40
    val_names = {line.split(" =")[0] for line in a.val.splitlines() if line}
    train_names = {line.split(" =")[0] for line in a.train.splitlines() if line}
    assert not val_names & train_names


@pytest.mark.parametrize("setup,match", [
    (lambda d: None, "no readable"),
    (lambda d: (d / "x.txt").write_text("not python"), "no readable"),
])
def test_empty_corpus_folder(tmp_path, setup, match):
    d = tmp_path / "empty"
    d.mkdir()
    setup(d)
    with pytest.raises(UserError, match=match):
        read_sources(DataConfig(folders=(str(d),)))


def test_missing_corpus_folder(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_sources(DataConfig(folders=(str(tmp_path / "nope"),)))


def test_batches_are_deterministic_and_ranks_partition_the_global_batch():
    stream = np.arange(10_000, dtype=np.int32)
    data = TokenData(stream, stream[:500], stream[::-1].copy(), stream[:400], 0.4, n_ctx=16, seed=3)
    a = data.batch(7, 8)
    assert a.shape == (8, 17)
    assert np.array_equal(a, data.batch(7, 8))
    assert not np.array_equal(a, data.batch(8, 8))
    parts = np.concatenate([data.batch(7, 8, rank=r, world=2) for r in range(2)])
    assert np.array_equal(parts, a)
    assert (np.diff(a, axis=1) != 0).all()  # windows are contiguous slices of a stream


def test_snippet_budget_covers_the_run_up_to_the_cap():
    tokens = 4000 * 32 * 128  # the demo preset's training tokens
    wanted = int(0.7 * tokens * 1.5)  # 1.5x the snippet tokens read: sequences rarely repeat
    assert snippet_budget(DataConfig(snippet_frac=0.7, snippet_max_chars=0), tokens) == wanted
    assert snippet_budget(DataConfig(snippet_frac=0.7), tokens) == 4_000_000  # the default cap (older runs)
    assert snippet_budget(DataConfig(snippet_frac=0.7, snippet_max_chars=wanted * 2), tokens) == wanted
    assert snippet_budget(DataConfig(snippet_frac=0.7, snippet_max_chars=0), 1000) == 200_000  # a floor for tiny runs
    assert snippet_budget(DataConfig(snippet_frac=0.0), tokens) == 4096
    with pytest.raises(UserError, match="snippet_max_chars"):
        DataConfig(snippet_max_chars=-1).validate()
