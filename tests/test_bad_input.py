"""The bad-input sweep of issue 20: each case refuses clearly (or scores as a failure), none loses data."""
from __future__ import annotations

import json
import math
import pickle
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import PYTHON, ROOT, TINY_MODEL, make_data_dir
from sekd.bin.enhance import OUTPUT_FILES as ENHANCE_FILES
from sekd.bin.enhance import main as enhance_main
from sekd.bin.score import main as score_main
from sekd.bin.score_sv import main as score_sv_main
from sekd.data import DataError
from sekd.metrics import METRICS
from sekd.models import build_model
from sekd.output_dir import OutputDir

TINY_ECAPA = {"name": "ecapa_tdnn", "args": dict(channels=32, mfa_channels=48, se_bottleneck=8,
                                                 attention_bottleneck=8, embed_dim=16)}


def _checkpoint(path, model_cfg=TINY_MODEL):
    torch.manual_seed(0)
    model = build_model(model_cfg["name"], **model_cfg["args"])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model_name": model_cfg["name"], "model_args": model_cfg["args"], "state_dict": model.state_dict(),
                "config": {"model": model_cfg, "data": {"sample_rate": 16000, "channels": 1}}}, path)
    return path


@pytest.fixture
def checkpoint(tmp_path):
    return _checkpoint(tmp_path / "ckpt" / "best.pt")


def _tone(seconds=0.5, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def _score(d, est_scp, out, *extra):
    return score_main(["--ref_scp", str(d / "spk1.scp"), "--est_scp", str(est_scp), "--out_dir", str(out), *extra])


def _sv_args(tmp_path, out):
    (tmp_path / "trials").write_text("a b target\na c nontarget\n")
    (tmp_path / "scores").write_text("a b 0.9\na c 0.1\n")
    return ["--trials", str(tmp_path / "trials"), "--scores", str(tmp_path / "scores"), "--out_dir", str(out)]


# 1. An --out_dir that is not the tool's own output is never deleted.
@pytest.mark.parametrize("tool", ["score", "score_sv", "enhance"])
def test_out_dir_that_is_not_the_tools_output_is_refused(tmp_path, capsys, checkpoint, tool):
    d = make_data_dir(tmp_path / "d", num_utts=2, seconds=0.5)
    out = tmp_path / "system"
    out.mkdir()
    (out / "best.pt").write_bytes(b"precious checkpoint")

    def run():
        if tool == "score":
            return _score(d, d / "wav.scp", out, "--metrics", "sisdr")
        if tool == "score_sv":
            return score_sv_main(_sv_args(tmp_path, out))
        return enhance_main(["-m", str(checkpoint), "--data_dir", str(d), "--out_dir", str(out)])

    assert run() == 1
    err = capsys.readouterr().err
    assert f"{out}: exists and is not an output of sekd-" in err and "'best.pt'" in err
    assert (out / "best.pt").read_bytes() == b"precious checkpoint"
    # The tool's own output (and the recipes' .done) is replaced; nothing is left beside it.
    (out / "best.pt").unlink()
    assert run() == 0
    (out / ".done").touch()
    assert run() == 0 and not (out / ".done").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# 2. sekd-enhance -o never writes over an input file.
def test_enhance_refuses_an_output_that_is_an_input(tmp_path, capsys, checkpoint):
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "a.wav", _tone(), 16000)
    original = (folder / "a.wav").read_bytes()
    for out, item in ((folder, folder / "a.wav"), (tmp_path, folder)):  # the input's folder; the folder's parent
        assert enhance_main(["-m", str(checkpoint), "-o", str(out), str(item)]) == 1
        assert f"the output would overwrite the input {folder / 'a.wav'}" in capsys.readouterr().err
        assert (folder / "a.wav").read_bytes() == original


# 3. A second --data_dir run into the same out dir fails clearly instead of racing the first.
def test_enhance_into_an_out_dir_another_run_holds_fails(tmp_path, capsys, checkpoint):
    d = make_data_dir(tmp_path / "d", num_utts=2, seconds=0.5)
    out = tmp_path / "enhanced"
    args = ["-m", str(checkpoint), "--data_dir", str(d), "--out_dir", str(out)]
    with OutputDir(out, "sekd-enhance", ENHANCE_FILES):  # what the first run holds while it works
        assert enhance_main(args) == 1
    err = capsys.readouterr().err
    assert f"{out}: another sekd-enhance run is writing it" in err and not out.exists()
    assert enhance_main(args) == 0
    scp = dict(line.split() for line in (out / "wav.scp").read_text().splitlines())
    assert len(scp) == 2 and all(sf.info(p).frames == 8000 for p in scp.values())


# 4. A bad estimate with --nj 2: a clear error, not a hung pool.
def test_data_error_pickles_with_both_parts():
    exc = pickle.loads(pickle.dumps(DataError("est.scp:3", "utterance 'u': 8000 samples")))
    assert (exc.where, exc.what, str(exc)) == ("est.scp:3", "utterance 'u': 8000 samples",
                                               "est.scp:3: utterance 'u': 8000 samples")


@pytest.mark.timeout(60)
def test_score_nj2_reports_a_length_mismatch_instead_of_hanging(tmp_path):
    d = make_data_dir(tmp_path / "d", num_utts=4, seconds=0.5)
    lines = (d / "wav.scp").read_text().splitlines()
    key = lines[2].split()[0]
    sf.write(tmp_path / "short.wav", _tone(0.25), 16000)
    lines[2] = f"{key} {tmp_path / 'short.wav'}"
    (d / "est.scp").write_text("\n".join(lines) + "\n")
    proc = subprocess.run([PYTHON, "-m", "sekd.bin.score", "--ref_scp", str(d / "spk1.scp"), "--est_scp",
                           str(d / "est.scp"), "--out_dir", str(tmp_path / "o"), "--metrics", "sisdr", "--nj", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=50)
    assert proc.returncode == 1, proc.stderr
    assert f"{d / 'est.scp'}:3: utterance {key!r}: 4000 samples" in proc.stderr
    assert not (tmp_path / "o").exists()


# 5. Silent signals: undefined metrics are NaN failures; result.json is strict JSON.
def test_silent_reference_and_estimate_are_failures_in_strict_json(tmp_path, capsys):
    d = make_data_dir(tmp_path / "d", num_utts=3, seconds=1.0)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    refs, ests = ((d / n).read_text().splitlines() for n in ("spk1.scp", "wav.scp"))
    keys = [line.split()[0] for line in refs]
    refs[0], ests[1] = f"{keys[0]} {silent}", f"{keys[1]} {silent}"
    (d / "spk1.scp").write_text("\n".join(refs) + "\n")
    (d / "est.scp").write_text("\n".join(ests) + "\n")
    assert _score(d, d / "est.scp", tmp_path / "o", "--metrics", "pesq_wb,stoi,estoi,sisdr,sdr,segsnr") == 0

    def no_constants(name):
        raise ValueError(f"non-JSON constant {name}")

    summary = json.loads((tmp_path / "o" / "result.json").read_text(), parse_constant=no_constants)
    failed = {m: s["failed"] for m, s in summary["metrics"].items()}
    # All fail on the silent reference; all but segSNR (defined: noise = reference) on the silent estimate.
    assert failed == {"pesq_wb": 2, "stoi": 2, "estoi": 2, "sisdr": 2, "sdr": 2, "segsnr": 1}
    assert summary["metrics"]["sisdr"]["n"] == 1 and math.isfinite(summary["metrics"]["sdr"]["mean"])
    assert f"warning: sisdr failed on {keys[0]}: ValueError: silent reference" in capsys.readouterr().err
    x = np.random.default_rng(0).standard_normal(1000)
    for name in ("sisdr", "sdr", "stoi"):
        with pytest.raises(ValueError, match="silent"):
            METRICS[name](x, np.zeros(1000), 16000)


# 6. An estimate list covering only some references is refused unless --allow_missing.
def test_partial_est_scp_is_refused_unless_allowed(tmp_path, capsys):
    d = make_data_dir(tmp_path / "d", num_utts=3, seconds=0.5)
    lines = (d / "wav.scp").read_text().splitlines()
    (d / "est.scp").write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    missing = lines[1].split()[0]
    assert _score(d, d / "est.scp", tmp_path / "o", "--metrics", "sisdr") == 1
    assert f"no estimate for 1 of 3 reference utterances, the first {missing!r}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert _score(d, d / "est.scp", tmp_path / "o", "--metrics", "sisdr", "--allow_missing") == 0
    summary = json.loads((tmp_path / "o" / "result.json").read_text())
    assert (summary["num_utts"], summary["num_missing"]) == (2, 1)


# 7. Each tool refuses the other task's model.
def test_enhance_refuses_a_speaker_model_and_embedding_an_enhancement_one(tmp_path, capsys, checkpoint):
    import zipfile

    from sekd.bin.extract_embeddings import main as embed_main

    sv = _checkpoint(tmp_path / "sv" / "best.pt", TINY_ECAPA)
    packed = tmp_path / "sv.zip"
    with zipfile.ZipFile(packed, "w") as z:
        z.write(sv, "model.pt")
    sf.write(tmp_path / "x.wav", _tone(), 16000)
    for model in (sv, packed):
        assert enhance_main(["-m", str(model), str(tmp_path / "x.wav")]) == 1
        assert "ECAPATDNN is a speaker-verification model (task 'sv')" in capsys.readouterr().err
    assert not (tmp_path / "x_enhanced.wav").exists()
    d = make_data_dir(tmp_path / "d", num_utts=1, seconds=0.5)
    assert embed_main(["--checkpoint", str(checkpoint), "--data_dir", str(d), "--out_dir", str(tmp_path / "e")]) == 1
    assert "is not a speaker-verification model" in capsys.readouterr().err


# 8. No absurd RTF when no audio was processed.
def test_enhance_prints_no_rtf_without_audio(tmp_path, capsys, checkpoint):
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    assert enhance_main(["-m", str(checkpoint), str(tmp_path / "broken.wav")]) == 1
    assert "enhanced 0 of 1 files (0.0 s of audio, RTF n/a)" in capsys.readouterr().out


# 9. NaN/Inf samples are refused, naming the file (and the utterance).
def test_non_finite_samples_are_refused(tmp_path, capsys, checkpoint):
    x = _tone()
    x[1234] = np.nan
    x[2000] = np.inf
    bad = tmp_path / "nan.wav"
    sf.write(bad, x, 16000, subtype="FLOAT")
    assert enhance_main(["-m", str(checkpoint), "-o", str(tmp_path / "o"), str(bad)]) == 1
    assert f"{bad}: 2 NaN or Inf sample(s), the first at sample 1234" in capsys.readouterr().err
    assert not (tmp_path / "o" / "nan.wav").exists()
    d = make_data_dir(tmp_path / "d", num_utts=2, seconds=0.5)
    lines = (d / "wav.scp").read_text().splitlines()
    key = lines[1].split()[0]
    lines[1] = f"{key} {bad}"
    (d / "wav.scp").write_text("\n".join(lines) + "\n")
    assert enhance_main(["-m", str(checkpoint), "--data_dir", str(d), "--out_dir", str(tmp_path / "enh")]) == 1
    assert f"{d / 'wav.scp'}:2: utterance {key!r} ({bad}): 2 NaN or Inf" in capsys.readouterr().err
    assert not (tmp_path / "enh").exists()
    # The scorer refuses them too (a broken file, not a bad enhancement).
    assert _score(d, d / "wav.scp", tmp_path / "s", "--metrics", "sisdr") == 1
    assert f"utterance {key!r} ({bad}): 2 NaN or Inf" in capsys.readouterr().err
