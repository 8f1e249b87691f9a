"""Importing OpenAI's weight-sparse models (issue 16): logit and hook parity with the references their
own code computed, the tinypython tokenizer, runs without a tokenizer, and bad input (one ``error:``
line, exit 2, nothing written). The fixtures live in ../shared/fixtures/openai (README there)."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import load_file

from engine.cli.main import main
from engine.errors import UserError
from engine.interop.openai_format import FINAL_RESID_HOOK, HOOK_BOUNDARY_OFFSETS, HOOK_SITES, HOOKS_WITHOUT_SITE
from engine.interop.openai_import import import_openai
from engine.interop.openai_tokenizer import END_OF_TEXT, load_openai_tokenizer
from engine.runs import load_run
from engine.sites import FINAL_RESID, intervene

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / ".." / "shared" / "fixtures" / "openai"
MODELS = ("fx_a_tied_2L", "fx_c_catpos_layernorm_relu")


def _fixtures() -> Path:
    if not (FIXTURES / "models").is_dir():
        pytest.skip(f"{FIXTURES.resolve()} not found: the OpenAI fixtures live in ../shared (CI has them)")
    return FIXTURES


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, Path]:
    """Both fixture models imported once (fx_a with the tinypython tokenizer; fx_c's vocab is 512, so none)."""
    fx = _fixtures()
    root = tmp_path_factory.mktemp("imported")
    runs = {}
    for name in MODELS:
        tok = fx / "tinypython" if name == "fx_a_tied_2L" else None
        import_openai(fx / "models" / name, root / name, tok)
        runs[name] = root / name
    return runs


# ------------------------------------------------------------------------------------------ parity


@pytest.mark.parametrize("name", MODELS)
def test_logits_match_their_reference(imported, name):
    ref = FIXTURES / "reference" / name
    run = load_run(imported[name])
    with torch.no_grad():
        logits = run.model(torch.from_numpy(np.load(ref / "tokens.npy")))
    expected = np.load(ref / "logits.npy")
    assert logits.shape == expected.shape
    np.testing.assert_allclose(logits.numpy(), expected, atol=1e-4, rtol=0)


def _record(run, tokens: torch.Tensor, sites: list[str]) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    got: dict[str, torch.Tensor] = {}

    def keep(site):
        def hook(x):
            got[site] = x.detach().clone()
            return x
        return hook

    with torch.no_grad(), intervene({s: keep(s) for s in sites}):
        _, cache = run.model.forward_with_cache(tokens)
    return got, cache


@pytest.mark.parametrize("name", MODELS)
def test_every_hook_matches_our_site(imported, name):
    ref = FIXTURES / "reference" / name
    run = load_run(imported[name])
    n_layer, d_model = run.config.model.n_layer, run.config.model.d_model
    hooks = load_file(str(ref / "hooks_seq0.safetensors"))
    sites = [f"blocks.{L}.{kind}" for L in range(n_layer) for kind in HOOK_SITES.values()] + [FINAL_RESID]
    got, cache = _record(run, torch.from_numpy(np.load(ref / "tokens.npy"))[:1], sites)
    compared = set()
    for hook, theirs in hooks.items():
        layer, _, suffix = hook.partition(".")
        if suffix in HOOKS_WITHOUT_SITE:
            continue
        if suffix in HOOK_SITES:
            ours = got[f"blocks.{layer}.{HOOK_SITES[suffix]}"][0]
        elif suffix in HOOK_BOUNDARY_OFFSETS:
            ours = cache[2 * int(layer) + HOOK_BOUNDARY_OFFSETS[suffix]][0, :, :d_model]
        else:
            assert hook == FINAL_RESID_HOOK, f"a hook the mapping table does not know: {hook}"
            ours = got[FINAL_RESID][0]
            np.testing.assert_allclose(cache[-1][0, :, :d_model].numpy(), theirs, atol=1e-4, rtol=0)
        assert tuple(ours.shape) == theirs.shape, hook
        np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-4, rtol=0, err_msg=hook)
        compared.add(hook)
    assert len(compared) == len(hooks) - n_layer * len(HOOKS_WITHOUT_SITE) == 10 * n_layer + 1


def test_imported_run_folder(imported):
    a, c = imported["fx_a_tied_2L"], imported["fx_c_catpos_layernorm_relu"]
    status = json.loads((a / "run.json").read_text())
    assert status["source"] == "openai" and status["ignored_keys"] == []
    assert status["config"]["tied_unembed"] is True and Path(status["model_dir"]).name == "fx_a_tied_2L"
    with safe_open(str(a / "model.safetensors"), "pt") as f:  # tied: the embedding is stored once
        assert "wte.weight" in f.keys() and "lm_head.weight" not in f.keys() and "wpe_add" in f.keys()
    cfg = json.loads((a / "config.json").read_text())
    assert cfg["model"]["afrac"] == 0.25 and cfg["model"]["afrac_floor"] and len(cfg["model"]["afrac_sites"]) == 8
    assert cfg["sparsity"]["enabled"] and cfg["sparsity"]["density"] == pytest.approx(1 / 16)
    m = load_run(c).config.model
    assert (m.heads, m.pos_channels, m.pos_norm, m.norm, m.norm_bias, m.linear_bias, m.mlp_act, m.afrac) == \
        (2, 16, "separate", "layer", True, False, "relu", 1.0)
    status_c = json.loads((c / "run.json").read_text())
    assert status_c["ignored_keys"] == [] and "n_mlp" in status_c["config"]  # their legacy spelling, kept as is
    assert not (c / "tokenizer.json").exists()


# ------------------------------------------------------------------------------------------ tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for every byte (written from its published description)."""
    printable = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + i) for i, b in enumerate(others)}}


# Their pre-tokenizer regex for ASCII text (\p{L} -> [A-Za-z], \p{N} -> [0-9]): Python's re has no \p{..}.
_ASCII_PAT = re.compile(r"[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]{1,3}| ?[^\sA-Za-z0-9]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def _reference_encode(text: str, ranks: dict[bytes, int]) -> list[int]:
    """Rank-based byte-pair merging as tiktoken does it: merge the adjacent pair whose bytes have the lowest rank."""
    ids = []
    for piece in _ASCII_PAT.findall(text):
        parts = [bytes([b]) for b in piece.encode()]
        while len(parts) > 1:
            best = min(((ranks.get(parts[i] + parts[i + 1]), i) for i in range(len(parts) - 1)
                        if parts[i] + parts[i + 1] in ranks), default=None)
            if best is None:
                break
            i = best[1]
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        ids += [ranks[p] for p in parts]
    return ids


def test_tinypython_tokenizer_matches_rank_bpe(tmp_path):
    from engine.data.tokenizer import load_tokenizer, save_tokenizer

    fx = _fixtures()
    tok = load_openai_tokenizer(fx / "tinypython")
    assert tok.vocab_size == 2048 and tok.encode(END_OF_TEXT).tolist() == [2047]
    decode_byte = {c: b for b, c in _bytes_to_unicode().items()}
    encoder = json.loads((fx / "tinypython" / "encoder.json").read_text(encoding="utf-8"))
    ranks = {bytes(decode_byte[c] for c in s): r for s, r in encoder.items() if s != END_OF_TEXT}
    source = Path(torch.nn.modules.linear.__file__).read_text(encoding="utf-8")
    texts = ["def f(x):\n    return x + 1  # one\r\n\tpass\n\n\n", "a  b   \n  c 12345 x1y22 ((\"]]))):\n",
             'print("hello, world")  \n', source.encode("ascii", "ignore").decode()[:20000]]
    for text in texts:
        ids = tok.encode(text).tolist()
        assert ids == _reference_encode(text, ranks), text[:60]
        assert tok.decode(ids) == text
    save_tokenizer(tok, tmp_path / "tokenizer.json")
    again = load_tokenizer(tmp_path / "tokenizer.json")
    assert again == tok and again.encode(texts[-1]).tolist() == tok.encode(texts[-1]).tolist()


# ------------------------------------------------------------------------------------------ no tokenizer


def test_run_without_tokenizer_evaluates_ids_and_refuses_text(imported, capsys):
    from engine.tasks.evaluate import task_data
    from engine.tasks.lookup import get_task

    run_dir = imported["fx_c_catpos_layernorm_relu"]
    run = load_run(run_dir)
    assert run.tokenizer is None
    assert run.model(torch.zeros(1, 4, dtype=torch.long)).shape == (1, 4, 512)
    with pytest.raises(UserError, match="--tokenizer TOK_DIR"):
        task_data(run, get_task("single_double_quote"), 4)
    assert main(["eval-tasks", str(run_dir), "--tasks", "single_double_quote"]) == 2
    err = capsys.readouterr().err
    assert _one_error_line(err) and "import-openai" in err and "tokenizer.json" in err
    assert main(["info", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["tokenizer"] is None


# ------------------------------------------------------------------------------------------ the CLI


def _one_error_line(err: str) -> bool:
    """stderr ends with exactly one ``error:`` line (progress lines may come before it), no traceback."""
    lines = err.splitlines()
    return bool(lines) and lines[-1].startswith("error: ") and sum(l.startswith("error") for l in lines) == 1 \
        and "Traceback" not in err


def _copy_model(tmp_path: Path, name: str = "fx_a_tied_2L") -> Path:
    dst = tmp_path / "model"
    shutil.copytree(_fixtures() / "models" / name, dst)
    for f in dst.iterdir():
        f.chmod(0o644)
    return dst


def _edit_config(model: Path, **changes) -> None:
    cfg = json.loads((model / "beeg_config.json").read_text())
    cfg.update(changes)
    (model / "beeg_config.json").write_text(json.dumps(cfg))


def test_cli_json_lists_ignored_keys_and_text_is_one_line(tmp_path, capsys):
    model = _copy_model(tmp_path)
    _edit_config(model, pfrac=0.5, n_embd=64)
    assert main(["import-openai", str(model), "--out", str(tmp_path / "run"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["ignored_keys"] == ["n_embd", "pfrac"] and result["tokenizer"] is None
    assert json.loads((tmp_path / "run" / "run.json").read_text())["ignored_keys"] == ["n_embd", "pfrac"]
    assert main(["import-openai", str(model), "--out", str(tmp_path / "run2")]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "run2" in out and "ignored config keys: n_embd, pfrac" in out


class _Payload:
    """Unpickling this opens (creates) a marker file: a stand-in for arbitrary code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _save(obj, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)  # through a file object, as their train.py: the zip prefix is archive/
    path.write_bytes(buf.getvalue())


def _state_dict() -> dict[str, torch.Tensor]:
    sd = torch.load(_fixtures() / "models" / "fx_a_tied_2L" / "final_model.pt", weights_only=True)
    return {k: v.clone() for k, v in sd.items()}


def _bad_input(case: str, tmp_path: Path) -> tuple[list[str], str]:
    """(extra CLI args, expected text in the error) for one kind of bad input; writes the files."""
    model = _copy_model(tmp_path)
    weights = model / "final_model.pt"
    if case == "empty folder":
        shutil.rmtree(model)
        model.mkdir()
        return [str(model)], "beeg_config.json and final_model.pt missing"
    if case == "garbage":
        weights.write_bytes(np.random.default_rng(0).bytes(5000))
        return [str(model)], "not a zip archive"
    if case == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        return [str(model)], "not a zip archive"
    if case == "pickle payload":
        _save({"transformer.wte.weight": _Payload(tmp_path / "PWNED")}, weights)
        return [str(model)], "never unpickles"
    if case == "shapes disagree":
        _edit_config(model, d_model=32)
        return [str(model)], "transformer.wte.weight has shape [2048, 64], its beeg_config.json says [2048, 32]"
    if case == "missing tensor":
        sd = _state_dict()
        del sd["transformer.ln_f.weight"]
        _save(sd, weights)
        return [str(model)], "missing transformer.ln_f.weight"
    if case == "untied lm_head":
        sd = _state_dict()
        sd["lm_head.weight"] = sd["lm_head.weight"] + 1.0
        _save(sd, weights)
        return [str(model)], "lm_head.weight differs"
    if case == "unsupported option":
        _edit_config(model, activation_type="swiglu")
        return [str(model)], "activation_type 'swiglu' is not supported"
    if case == "tied aux matrix":
        _edit_config(model, use_tied_aux_matrix=True)
        return [str(model)], "use_tied_aux_matrix"
    if case == "tokenizer of another size":
        model = _fixtures() / "models" / "fx_c_catpos_layernorm_relu"
        return [str(model), "--tokenizer", str(_fixtures() / "tinypython")], "has 2048 ids but the model's vocab_size is 512"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["empty folder", "garbage", "truncated", "pickle payload", "shapes disagree",
                                  "missing tensor", "untied lm_head", "unsupported option", "tied aux matrix",
                                  "tokenizer of another size"])
def test_bad_input_is_one_error_line_and_writes_nothing(case, tmp_path, capsys):
    args, expected = _bad_input(case, tmp_path)
    out = tmp_path / "runs" / "imported"
    assert main(["import-openai", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert _one_error_line(err) and expected in err, err
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))
    if case == "pickle payload":
        assert not (tmp_path / "PWNED").exists()
        torch.load(tmp_path / "model" / "final_model.pt", weights_only=False)  # the payload is live: it runs here
        assert (tmp_path / "PWNED").exists()


def test_existing_out_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep").write_text("x")
    assert main(["import-openai", str(_fixtures() / "models" / "fx_a_tied_2L"), "--out", str(out)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep"]


# ------------------------------------------------------------------------------------------ export


@pytest.mark.parametrize("name", MODELS)
def test_export_writes_their_format_and_round_trips(imported, name, tmp_path):
    import zipfile

    from engine.interop.openai_export import export_openai
    from engine.interop.openai_format import model_config, normalize_config

    src = FIXTURES / "models" / name
    result = export_openai(imported[name], tmp_path / "exported")
    exported = tmp_path / "exported"
    text = (exported / "beeg_config.json").read_text()
    assert "\n" not in text and text.startswith('{"block_size": ')  # one line, json.dump's separators
    def as_ours(config_text: str):
        return model_config(normalize_config(json.loads(config_text), "beeg_config.json")[0], "beeg_config.json")

    assert as_ours(text) == as_ours((src / "beeg_config.json").read_text())  # the same model, spelt anew
    with zipfile.ZipFile(exported / "final_model.pt") as zf:
        assert {i.filename.split("/")[0] for i in zf.infolist()} == {"archive"}
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    ours = torch.load(exported / "final_model.pt", weights_only=True)
    theirs = torch.load(src / "final_model.pt", weights_only=True)
    assert set(ours) == set(theirs) | {"final_logits_bias"}
    for key, value in theirs.items():
        assert ours[key].dtype == torch.float32 and torch.equal(ours[key], value), key
    if result["config"]["tied_unembed"]:
        assert ours["lm_head.weight"].untyped_storage().data_ptr() == ours["transformer.wte.weight"].untyped_storage().data_ptr()
        for f in ("encoder.json", "vocab.bpe"):
            assert (exported / "tinypython" / f).read_bytes() == (FIXTURES / "tinypython" / f).read_bytes()
    again = import_openai(exported, tmp_path / "again", exported / "tinypython" if result["tokenizer_dir"] else None)
    tokens = torch.from_numpy(np.load(FIXTURES / "reference" / name / "tokens.npy"))
    with torch.no_grad():
        assert torch.equal(load_run(again["run"]).model(tokens), load_run(imported[name]).model(tokens))


@pytest.mark.parametrize("change,expected", [
    ({"model": {"norm_eps": 1e-5}}, "cannot express model.norm_eps"),
    ({"model": {"alibi_heads": 1}}, "cannot express model.alibi_heads"),
    ("char tokenizer", "only byte-level BPE tokenizers"),
])
def test_export_refuses_what_their_format_cannot_express(imported, change, expected, tmp_path, capsys):
    from engine.data.tokenizer import CharTokenizer, save_tokenizer

    run = tmp_path / "run"
    shutil.copytree(imported["fx_a_tied_2L"], run)
    if change == "char tokenizer":
        save_tokenizer(CharTokenizer(), run / "tokenizer.json")
    else:
        cfg = json.loads((run / "config.json").read_text())
        cfg["model"].update(change["model"])
        (run / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "exports" / "x"
    assert main(["export-openai", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert _one_error_line(err) and expected in err, err
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))


def test_every_option_round_trips_and_a_shared_sink_is_expanded(tmp_path):
    """Options the fixtures do not exercise (per-head sinks, a bigram table, a nonzero final_logits_bias, ReLU on
    the residual, AbsTopK on a subset of sites with a residual one, LayerNorm with Linear biases): our run ->
    export -> import gives the same model; a 1-element sink becomes one per head, float16 becomes float32."""
    from engine.checkpoint import save_model
    from engine.config import ModelConfig, RunConfig
    from engine.fileio import atomic_write_json
    from engine.interop.openai_export import export_openai
    from engine.model import GPT

    mc = ModelConfig(vocab_size=64, n_layer=2, d_model=32, d_mlp=64, d_head=8, heads=2, n_ctx=16, attn_sink=True,
                     bigram_table=True, pos_additive=True, norm="layer", norm_eps=1e-5, norm_bias=True, mlp_act="relu",
                     resid_act="relu", afrac=0.5, afrac_sites=("attn.q", "mlp.neuron", "resid_post_mlp"),
                     afrac_floor=True)
    model = GPT(mc)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3, generator=torch.Generator().manual_seed(p.numel()))
    run = tmp_path / "ours"
    run.mkdir()
    atomic_write_json(run / "config.json", RunConfig(model=mc).to_dict())
    save_model(run, model)
    export_openai(run, tmp_path / "exported")
    result = import_openai(tmp_path / "exported", tmp_path / "again")
    tokens = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(load_run(result["run"]).model(tokens), model(tokens))
    assert load_run(result["run"]).config.model == mc

    weights = tmp_path / "exported" / "final_model.pt"
    sd = torch.load(weights, weights_only=True)
    sd["transformer.h.1.attn.attn_imp.sink_logit"] = torch.tensor([0.75])  # one sink for every head
    sd["transformer.h.0.mlp.c_fc.weight"] = sd["transformer.h.0.mlp.c_fc.weight"].half()
    _save(sd, weights)
    shared = load_run(import_openai(tmp_path / "exported", tmp_path / "shared")["run"]).model
    assert shared.blocks[1].attn.sink.tolist() == [0.75, 0.75]
    assert torch.equal(shared.blocks[0].mlp.c_fc.weight, sd["transformer.h.0.mlp.c_fc.weight"].float())
