"""The bad-input sweep of issue 20: each case refuses clearly (or scores as a failure), none loses data."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sekd.bin.enhance import OUTPUT_FILES as ENHANCE_FILES
from sekd.bin.enhance import main as enhance_main
from sekd.bin.score import main as score_main
from sekd.bin.score_sv import main as score_sv_main
from sekd.data import DataError
from sekd.metrics import METRICS
from sekd.models import build_model
from sekd.output_dir import OutputDir

from conftest import PYTHON, ROOT, TINY_MODEL, make_data_dir, recipe_env

TINY_ECAPA = {
    "name": "ecapa_tdnn",
    "args": dict(channels=32, mfa_channels=48, se_bottleneck=8, attention_bottleneck=8, embed_dim=16),
}


def _checkpoint(path, model_cfg=TINY_MODEL):
    torch.manual_seed(0)
    model = build_model(model_cfg["name"], **model_cfg["args"])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model_name": model_cfg["name"],
            "model_args": model_cfg["args"],
            "state_dict": model.state_dict(),
            "config": {"model": model_cfg, "data": {"sample_rate": 16000, "channels": 1}},
        },
        path,
    )
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
    assert (exc.where, exc.what, str(exc)) == (
        "est.scp:3",
        "utterance 'u': 8000 samples",
        "est.scp:3: utterance 'u': 8000 samples",
    )


@pytest.mark.timeout(60)
def test_score_nj2_reports_a_length_mismatch_instead_of_hanging(tmp_path):
    d = make_data_dir(tmp_path / "d", num_utts=4, seconds=0.5)
    lines = (d / "wav.scp").read_text().splitlines()
    key = lines[2].split()[0]
    sf.write(tmp_path / "short.wav", _tone(0.25), 16000)
    lines[2] = f"{key} {tmp_path / 'short.wav'}"
    (d / "est.scp").write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        [
            PYTHON,
            "-m",
            "sekd.bin.score",
            "--ref_scp",
            str(d / "spk1.scp"),
            "--est_scp",
            str(d / "est.scp"),
            "--out_dir",
            str(tmp_path / "o"),
            "--metrics",
            "sisdr",
            "--nj",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
    )
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


# -- training (issue 20 items 9, 10, 16, 17, 21) ---------------------------------
def _tiny_train(tmp_path, out, *extra, valid=None, train=None):
    from conftest import make_data_dir, write_config

    train = train or make_data_dir(tmp_path / "train", 4, 0.5, seed=1)
    valid = valid or make_data_dir(tmp_path / "valid", 2, 0.5, seed=2)
    conf = write_config(
        tmp_path / "c.yaml",
        train={"max_epochs": 1, "save_every_steps": 1, "log_every_steps": 1, "num_audio_examples": 0},
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sekd.bin.train",
            "--config",
            str(conf),
            "--train_dir",
            str(train),
            "--valid_dir",
            str(valid),
            "--out_dir",
            str(out),
            "--train.num_threads",
            "1",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "override, message",
    [
        (["--train.max_epochs", "abc"], "train.max_epochs: expected an integer >= 1, got 'abc'"),
        (["--optim.lr", "fast"], "optim.lr: expected a number > 0, got 'fast'"),
        (["--optim.lr", "-1e-3"], "optim.lr: expected a number > 0, got -0.001"),
        (["--data.batch_size", "0"], "data.batch_size: expected an integer >= 1, got 0"),
        (["--data.segment", "0"], "data.segment: expected a number > 0, got 0"),
        (["--data.batch_size", "64"], "data.batch_size 64 is larger than the training set (4 utterances in"),
    ],
)
def test_config_values_of_the_wrong_type_or_range_are_named(tmp_path, override, message):
    proc = _tiny_train(tmp_path, tmp_path / "exp", *override)
    assert proc.returncode in (1, 2) and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_nan_training_utterance_is_skipped_then_stops_naming_it(tmp_path):
    from conftest import make_data_dir

    train = make_data_dir(tmp_path / "train", 4, 0.5, seed=1)
    bad = sorted((train / "wav").glob("*_noisy.wav"))[0]
    x, rate = sf.read(bad)
    sf.write(bad, np.full_like(x, np.nan), rate, subtype="FLOAT")
    skipped = _tiny_train(tmp_path, tmp_path / "a", "--data.batch_size", "2", train=train)
    assert skipped.returncode == 0, skipped.stderr
    assert (
        "non-finite loss, batch skipped (1 so far; utterances:" in skipped.stderr
        and bad.stem.split("_noisy")[0] in skipped.stderr
    )
    stopped = _tiny_train(tmp_path, tmp_path / "b", "--data.batch_size", "2", "--train.max_nonfinite", "0", train=train)
    assert stopped.returncode == 1 and "batches with a non-finite loss (train.max_nonfinite 0)" in stopped.stderr


def test_no_finite_validation_score_is_an_error_not_a_finished_run(tmp_path):
    from conftest import make_data_dir

    valid = make_data_dir(tmp_path / "valid", 2, 0.5, seed=2)
    for wav in (valid / "wav").glob("*_noisy.wav"):
        x, rate = sf.read(wav)
        sf.write(wav, np.full_like(x, np.nan), rate, subtype="FLOAT")
    proc = _tiny_train(tmp_path, tmp_path / "exp", valid=valid)
    assert proc.returncode == 1 and "no epoch reached a finite validation score" in proc.stderr
    assert not (tmp_path / "exp" / "model_info.json").exists()


def test_resume_refuses_a_changed_config_and_a_damaged_checkpoint(tmp_path):
    out = tmp_path / "exp"
    cosine = ("--scheduler.name", "cosine")  # its schedule spans max_epochs: more epochs change the run
    first = _tiny_train(tmp_path, out, *cosine)
    assert first.returncode == 0, first.stderr
    config = (out / "config.yaml").read_text()
    changed = _tiny_train(tmp_path, out, "--resume", "--optim.lr", "5e-4", "--train.max_epochs", "3", *cosine)
    assert changed.returncode == 1 and "was started with another config" in changed.stderr
    assert "optim.lr: 0.001 -> 0.0005" in changed.stderr and "train.max_epochs: 1 -> 3" in changed.stderr
    assert (out / "config.yaml").read_text() == config  # the record of the run is not overwritten
    same = _tiny_train(tmp_path, out, "--resume", "--train.num_threads", "1", *cosine)
    assert same.returncode == 0, same.stderr
    # a plateau schedule does not depend on the epoch count: more epochs continue the run
    plateau = tmp_path / "plateau"
    assert _tiny_train(tmp_path, plateau).returncode == 0
    longer = _tiny_train(tmp_path, plateau, "--resume", "--train.max_epochs", "2")
    assert longer.returncode == 0 and "resumed from" in longer.stderr, longer.stderr
    last = out / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    damaged = _tiny_train(tmp_path, out, "--resume")
    assert damaged.returncode == 1 and "last.pt: cannot resume from it" in damaged.stderr


def test_missing_or_truncated_teacher_is_named(tmp_path):
    from conftest import make_data_dir, write_config

    train = make_data_dir(tmp_path / "train", 4, 0.5, seed=1)
    conf = write_config(tmp_path / "c.yaml", train={"max_epochs": 1})
    kd = tmp_path / "kd.yaml"
    kd.write_text("kd:\n  terms: [{name: output}]\n")
    broken = tmp_path / "teacher.pt"
    broken.write_bytes(b"PK\x03\x04 not a checkpoint")
    for teacher, message in (
        (tmp_path / "none.pt", "none.pt: checkpoint not found"),
        (broken, "teacher.pt: cannot load a model from it"),
    ):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "sekd.bin.distill",
                "--config",
                str(conf),
                "--kd_config",
                str(kd),
                "--teacher",
                str(teacher),
                "--train_dir",
                str(train),
                "--valid_dir",
                str(train),
                "--out_dir",
                str(tmp_path / "exp"),
                "--train.num_threads",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_recipe_never_reuses_stale_results(tmp_path):
    """Issue 20 item 7: a rerun with other options does not silently reuse the old model (an error,
    or --force true retrains), and enhancement and scoring follow the model they were made from."""

    from test_kd_evidence import _checkpoint

    from sekd.bin.pack import main as pack_main

    zip_path = tmp_path / "teacher.zip"
    assert pack_main(["--checkpoint", str(_checkpoint(tmp_path)), "--out", str(zip_path), "--no_profile"]) == 0
    env = recipe_env()
    opts = (
        "--train.max_epochs 1 --data.batch_size 2 --data.segment 0.5 --train.num_threads 1 "
        "--model.args.channels [4,8] --model.args.rnn_units 8"
    )

    def run(*extra):
        return subprocess.run(
            [
                str(ROOT / "egs" / "mini" / "run.sh"),
                "--datadir",
                str(tmp_path / "data"),
                "--exp",
                str(tmp_path / "exp"),
                "--data_opts",
                "--num_train 4 --num_valid 2 --num_test 2 --num_train_speakers 2 --num_valid_speakers 1 "
                "--num_test_speakers 1 --nj 1",
                "--kd_configs",
                "",
                "--teacher_model",
                str(zip_path),
                "--metrics",
                "sisdr",
                "--nj",
                "1",
                "--stop_stage",
                "7",
                *extra,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )

    first = run("--train_opts", opts)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    again = run("--train_opts", opts)
    assert again.returncode == 0 and "student: already trained" in again.stdout and "already scored" in again.stdout
    assert "redoing" not in again.stdout
    changed = run("--train_opts", opts + " --optim.lr 5e-4")
    assert changed.returncode != 0 and "was trained with other options or inputs than now" in changed.stdout
    forced = run("--train_opts", opts + " --optim.lr 5e-4", "--force", "true")
    assert forced.returncode == 0, forced.stdout[-3000:] + forced.stderr[-3000:]
    out = forced.stdout
    assert "student: --force: retraining from scratch" in out  # its old dir, enhanced audio and scores go
    assert "enhancing test with student" in out and "scoring student on test" in out
    assert "teacher on test: already enhanced" in out and "noisy on test: already scored" in out
    # another metric set: every scoring step is redone, nothing is retrained or re-enhanced
    rescored = run("--train_opts", opts + " --optim.lr 5e-4", "--metrics", "sisdr,stoi")
    assert rescored.returncode == 0, rescored.stdout[-3000:] + rescored.stderr[-3000:]
    assert rescored.stdout.count("made from other inputs (another model or options) than now: redoing it") == 3
    assert "already trained" in rescored.stdout and "student on test: already enhanced" in rescored.stdout


@pytest.mark.parametrize("tool", ["check_data", "train", "enhance", "score", "extract_embeddings"])
def test_help_of_tools_reading_data_dirs_states_the_pipe_convention(tool):
    proc = subprocess.run([sys.executable, "-m", f"sekd.bin.{tool}", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "'<command> |' is run in a shell" in " ".join(proc.stdout.split())


def test_check_data_refuses_mixed_channel_counts_and_empty_audio(tmp_path):
    """Issue 20 item 15: a stereo utterance in a mono set, or an empty one, fails stage 2 (naming it)."""
    from sekd.bin.check_data import main as check_main

    data = make_data_dir(tmp_path / "d", 3, 0.25)
    assert check_main([str(data)]) == 0
    wavs = sorted((data / "wav").glob("*_noisy.wav"))
    x, rate = sf.read(wavs[1])
    sf.write(wavs[1], np.stack([x, x], axis=1), rate)
    proc = subprocess.run([sys.executable, "-m", "sekd.bin.check_data", str(data)], capture_output=True, text=True)
    assert proc.returncode == 1 and "wav.scp:2" in proc.stderr and "2 channel(s), but the first input" in proc.stderr
    sf.write(wavs[1], x, rate)
    for kind in ("noisy", "clean"):
        sf.write(wavs[2].with_name(wavs[2].name.replace("noisy", kind)), np.zeros(0), rate)
    proc = subprocess.run([sys.executable, "-m", "sekd.bin.check_data", str(data)], capture_output=True, text=True)
    assert proc.returncode == 1 and "wav.scp:3" in proc.stderr and "empty audio, 0 samples" in proc.stderr


def test_teacher_of_another_sample_rate_is_refused(tmp_path):
    """Issue 20 item 14: an 8 kHz teacher for a 16 kHz student and data."""
    from test_kd_evidence import _checkpoint

    from conftest import write_config

    ckpt = _checkpoint(tmp_path)
    saved = torch.load(ckpt, weights_only=False)
    saved["config"] = {"data": {"sample_rate": 8000}}
    torch.save(saved, ckpt)
    train = make_data_dir(tmp_path / "train", 4, 0.5)
    conf = write_config(tmp_path / "c.yaml", train={"max_epochs": 1})
    kd = tmp_path / "kd.yaml"
    kd.write_text("kd:\n  terms: [{name: output}]\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sekd.bin.distill",
            "--config",
            str(conf),
            "--kd_config",
            str(kd),
            "--teacher",
            str(ckpt),
            "--train_dir",
            str(train),
            "--valid_dir",
            str(train),
            "--out_dir",
            str(tmp_path / "exp"),
            "--train.num_threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1 and "was trained at 8000 Hz, the student and its data are at 16000 Hz" in proc.stderr


def test_stage_after_stop_stage_is_an_error(tmp_path):
    proc = subprocess.run(
        [
            str(ROOT / "egs" / "mini" / "run.sh"),
            "--stage",
            "7",
            "--stop_stage",
            "6",
            "--datadir",
            str(tmp_path / "d"),
            "--exp",
            str(tmp_path / "e"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "--stage 7 is after --stop_stage 6: no stage would run" in proc.stdout


def test_truncated_result_json_and_corrupt_onnx_are_named(tmp_path):
    """Issue 20 item 17: the report and sekd-enhance name the damaged file instead of a traceback."""
    d = tmp_path / "exp" / "noisy" / "scoring" / "test"
    d.mkdir(parents=True)
    (d / "result.json").write_text('{"num_utts": 4, "metr')
    proc = subprocess.run(
        [sys.executable, "-m", "sekd.bin.report", "--exp_dir", str(tmp_path / "exp"), "--no_plots"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "result.json: not readable JSON" in proc.stderr and "Traceback" not in proc.stderr
    onnx = tmp_path / "student.onnx"
    onnx.write_bytes(b"\x08\x07 not a model")
    wav = tmp_path / "in.wav"
    sf.write(wav, np.zeros(8000, dtype=np.float32), 16000)
    proc = subprocess.run(
        [sys.executable, "-m", "sekd.bin.enhance", "-m", str(onnx), str(wav), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "student.onnx: not a readable ONNX model" in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


class _Payload:
    """An object a checkpoint should not need: unpickling it could run code."""


def test_checkpoints_load_without_running_code_unless_trusted(tmp_path, monkeypatch):
    """Issue 20 item 5: sekd's own checkpoints load with weights_only=True (resume state included);
    one holding arbitrary objects is refused with a message, and loads only when trusted."""
    from test_kd_evidence import _checkpoint

    from sekd.train.checkpoint import TRUST_ENV, load_checkpoint, save_atomic

    ckpt = _checkpoint(tmp_path)
    state = torch.load(ckpt, weights_only=True)  # what sekd writes is plain
    state["extra"] = {"numpy": np.float64(1.5), "array": np.arange(3)}  # made plain by save_atomic
    save_atomic(state, ckpt)
    assert load_checkpoint(ckpt)["extra"]["numpy"] == 1.5
    evil = tmp_path / "evil.pt"
    torch.save({**state, "payload": _Payload()}, evil)
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(ValueError, match="loading it could run code stored in it.*--trust_checkpoint"):
        load_checkpoint(evil)
    wav = tmp_path / "in.wav"
    sf.write(wav, np.zeros(8000, dtype=np.float32), 16000)
    proc = subprocess.run(
        [sys.executable, "-m", "sekd.bin.enhance", "-m", str(evil), str(wav), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
    )
    assert proc.returncode != 0 and "could run code" in proc.stderr
    monkeypatch.setenv(TRUST_ENV, "1")
    assert isinstance(load_checkpoint(evil)["payload"], _Payload)


def test_full_disk_is_named_and_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    """Issue 20 item 18: a write that fails for lack of space says so and leaves no temporary file."""
    import errno

    from sekd.data.audio import write_wav
    from sekd.train import checkpoint

    def full(obj, f, *args, **kwargs):
        with open(f, "wb") as out:
            out.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    with pytest.raises(OSError, match="last.pt: could not be written .*is the disk full"):
        checkpoint.save_atomic({"a": 1}, tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []
    import soundfile

    def no_space(*args, **kwargs):
        raise soundfile.LibsndfileError(2, "System error.")

    monkeypatch.setattr(soundfile, "write", no_space)
    with pytest.raises(OSError, match="out.wav: could not be written .*is the disk full"):
        write_wav(tmp_path / "out.wav", np.zeros(160, dtype=np.float32), 16000)


def test_report_flags_a_system_scored_on_fewer_utterances(tmp_path):
    """Issue 20 item 12: rows computed on different utterance sets are flagged."""
    from sekd.bin.report import main as report_main

    for name, n, missing in (("noisy", 4, 0), ("teacher", 3, 1)):
        d = tmp_path / "exp" / name / "scoring" / "test"
        d.mkdir(parents=True)
        (d / "result.json").write_text(
            json.dumps({"num_utts": n, "num_missing": missing, "metrics": {"sisdr": {"mean": 1.0, "failed": 0}}})
        )
    (tmp_path / "exp" / "teacher" / "model_info.json").write_text(json.dumps({"role": "teacher"}))
    assert report_main(["--exp_dir", str(tmp_path / "exp"), "--no_plots"]) == 0
    md = (tmp_path / "exp" / "RESULTS.md").read_text()
    assert "**Warning**: teacher was scored on 3 of 4 utterances (1 missing)" in md
    assert "noisy was scored" not in md


def test_one_resampler_everywhere():
    """Issue 20 item 22: array resampling (sekd.load_pretrained()'s enhancer, DNSMOS, the ASR metric) is
    soxr VHQ, as the data prep and the streaming file enhancer are."""
    import soxr

    from sekd.data.audio import resample

    x = np.random.default_rng(0).standard_normal((2, 4800)).astype(np.float32)
    want = soxr.resample(x.T.astype(np.float64), 48000, 16000, quality="VHQ").T
    assert np.allclose(resample(x, 48000, 16000), want, atol=1e-6) and resample(x, 48000, 16000).dtype == np.float32
    assert np.allclose(resample(x[0], 48000, 16000), want[0], atol=1e-6)


def test_atomic_file_and_dir_appear_whole_or_not_at_all(tmp_path):
    """The one helper for atomic outputs: a block that raises leaves the old file or directory as
    it was and no temporary beside it; a block that ends replaces it whole."""
    from sekd.output_dir import atomic_dir, atomic_file

    f = tmp_path / "a.json"
    f.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(f) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert f.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    with atomic_file(f) as tmp:
        assert tmp.suffix == ".json" and tmp.parent == tmp_path
        tmp.write_text("new")
    assert f.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    d = tmp_path / "out"
    d.mkdir()
    (d / "x").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(d) as tmp:
            (tmp / "y").write_text("half")
            raise RuntimeError("killed")
    assert [p.name for p in d.iterdir()] == ["x"] and sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "out"]
    with atomic_dir(d) as tmp:
        (tmp / "y").write_text("new")
    assert [p.name for p in d.iterdir()] == ["y"] and sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "out"]
