"""The real-corpus recipes on fixture trees with the corpora's layouts: data stages, then the
whole recipe with --conf_tag tiny (download stages are tested in test_download.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT
from corpus_fixtures import dominant_f0, f0_of, make_dns2020, make_l3das23, make_voicebank_demand, make_voxceleb1

TINY_METRICS = "pesq_wb,stoi,sisdr"
TINY_REPORT = ["--report_opts", "--profile_seconds 0.25"]  # the cost profile of each model on 0.25 s of audio


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parents[1])
    return env


def run_in(recipe: str, script: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(ROOT / "egs" / recipe / script), *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
        cwd=ROOT / "egs" / recipe,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def read_table(path: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in path.read_text().splitlines())


def validate(data_dir: Path) -> None:
    proc = subprocess.run([str(ROOT / "utils" / "validate_data_dir.sh"), str(data_dir)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def check_pairs(data_dir: Path, rate: int, channels: int = 1) -> None:
    """Every input is paired with the clean file it was made from (same fingerprint), same length."""
    wav, ref = read_table(data_dir / "wav.scp"), read_table(data_dir / "spk1.scp")
    assert wav.keys() == ref.keys()
    for utt in wav:
        noisy, r1 = sf.read(wav[utt], always_2d=True)
        clean, r2 = sf.read(ref[utt], always_2d=True)
        assert (r1, r2) == (rate, rate) and noisy.shape == (len(clean), channels) and clean.shape[1] == 1
        assert abs(dominant_f0(noisy[:, 0], rate) - dominant_f0(clean[:, 0], rate)) < 3.0, utt


def results_rows(exp: Path) -> list[str]:
    lines = (exp / "RESULTS.md").read_text().splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| System"))
    return [line.split(" | ")[0][2:] for line in lines[head + 2 :] if line.startswith("| ")]


def test_voicebank_demand_data_prep(tmp_path):
    db = make_voicebank_demand(tmp_path / "db")
    out = tmp_path / "data"
    run_in("voicebank_demand", "local/data.sh", "--db_dir", str(db), "--out_dir", str(out), "--nj", "1")
    spks = {}
    for subset in ("train", "valid", "test"):
        validate(out / subset)
        check_pairs(out / subset, 16000)
        spks[subset] = set(read_table(out / subset / "utt2spk").values())
    assert spks == {"train": {"p226", "p227"}, "valid": {"p282", "p287"}, "test": {"p232", "p257"}}
    # 48 kHz -> 16 kHz keeps the duration and the fingerprint
    utt = "p226_002"
    clean = sf.read(read_table(out / "train" / "spk1.scp")[utt])[0]
    assert len(clean) == int(1.4 * 16000)
    assert abs(dominant_f0(clean, 16000) - f0_of(utt)) < 3.0
    assert read_table(out / "train" / "utt2dur")[utt] == "1.400"
    # a noisy file without its clean partner: an error naming it, and no data dir written
    (db / "noisy_testset_wav" / "p232_009.wav").write_bytes((db / "noisy_testset_wav" / "p232_001.wav").read_bytes())
    proc = subprocess.run(
        [
            str(ROOT / "egs" / "voicebank_demand" / "local" / "data.sh"),
            "--db_dir",
            str(db),
            "--out_dir",
            str(tmp_path / "data2"),
            "--nj",
            "1",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT / "egs" / "voicebank_demand",
    )
    assert proc.returncode == 1
    assert "noisy_testset_wav/p232_009.wav: no clean partner in" in proc.stderr
    assert not (tmp_path / "data2" / "test").exists()


def test_voicebank_demand_recipe_tiny(tmp_path):
    db = make_voicebank_demand(tmp_path / "db", per_speaker=2)
    exp = tmp_path / "exp"
    proc = run_in(
        "voicebank_demand",
        "run.sh",
        "--db_dir",
        str(db),
        "--datadir",
        str(tmp_path / "data"),
        "--exp",
        str(exp),
        "--conf_tag",
        "tiny",
        "--metrics",
        TINY_METRICS,
        "--data_opts",
        "--nj 1",
        *TINY_REPORT,
    )
    assert "download.sh: " + str(db) + "/clean_testset_wav is there" in proc.stdout  # stage 0 skipped
    assert results_rows(exp)[:4] == ["noisy", "teacher_manner", "student_manner", "student_kd_mvat"]
    cfg = (exp / "student_kd_mvat" / "config.yaml").read_text()
    assert "hidden: 4" in cfg and "steps_per_epoch: 2" in cfg  # the tiny overlays were applied


def test_dns2020_data_prep(tmp_path):
    db = make_dns2020(tmp_path / "DNS-Challenge")
    out = tmp_path / "data"
    run_in("dns2020", "local/data.sh", "--db_dir", str(db), "--out_dir", str(out), "--num_valid", "2")
    for subset in ("train", "valid", "test_no_reverb", "test_with_reverb"):
        validate(out / subset)
    for subset in ("noise_train", "noise_valid"):
        proc = subprocess.run(
            [str(ROOT / "utils" / "validate_data_dir.sh"), "--no-spk1", str(out / subset)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    for rev in ("no_reverb", "with_reverb"):
        check_pairs(out / f"test_{rev}", 16000)
        assert sorted(read_table(out / f"test_{rev}" / "wav.scp")) == ["fileid_0", "fileid_1", "fileid_2"]
        assert read_table(out / f"test_{rev}" / "spk1.scp")["fileid_2"].endswith(f"{rev}/clean/clean_fileid_2.wav")
    # training input is the clean speech itself (mixed on the fly); readers never in both train and valid
    train = read_table(out / "train" / "wav.scp")
    assert train == read_table(out / "train" / "spk1.scp") and len(train) == 6
    assert all(utt.startswith("reader_0100") for utt in train)
    valid_spk = set(read_table(out / "valid" / "utt2spk").values())
    assert len(valid_spk) == 1 and not valid_spk & set(read_table(out / "train" / "utt2spk").values())
    # validation mixtures: rendered once, 4 s, noisy = clean + noise from held-out clips
    assert set(read_table(out / "noise_valid" / "wav.scp")).isdisjoint(read_table(out / "noise_train" / "wav.scp"))
    check_pairs(out / "valid", 16000)
    # a noisy test file without its clean partner names the file
    (db / "datasets/test_set/synthetic/no_reverb/clean/clean_fileid_1.wav").unlink()
    proc = subprocess.run(
        [
            str(ROOT / "egs" / "dns2020" / "local" / "data.sh"),
            "--db_dir",
            str(db),
            "--out_dir",
            str(tmp_path / "data2"),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT / "egs" / "dns2020",
    )
    assert proc.returncode == 1 and "_fileid_1.wav: no clean partner clean_fileid_1.wav" in proc.stderr


def test_dns2020_partial_download_tests_on_what_it_has(tmp_path):
    """Only no_reverb downloaded: stages 1-2 make and validate that test set, say that with_reverb is
    missing, and --test_sets auto resolves to it; naming the missing set, or having none, is an error.
    A broken KD config does not block the data stages (the plan is made after them), only stage 3 on."""
    import shutil

    db = make_dns2020(tmp_path / "DNS-Challenge")
    shutil.rmtree(db / "datasets/test_set/synthetic/with_reverb")
    data = tmp_path / "data"
    broken = tmp_path / "broken_kd.yaml"
    broken.write_text("kd: {terms: [unclosed\n")
    proc = run_in(
        "dns2020",
        "run.sh",
        "--db_dir",
        str(db),
        "--datadir",
        str(data),
        "--exp",
        str(tmp_path / "exp"),
        "--stage",
        "1",
        "--stop_stage",
        "2",
        "--data_opts",
        "--num_valid 2",
        "--kd_configs",
        str(broken),
    )
    assert "test set test_with_reverb:" in proc.stdout and "is not there (a partial download?): skipped" in proc.stdout
    assert (data / "test_sets").read_text().split() == ["test_no_reverb"] and not (data / "test_with_reverb").exists()
    assert "test sets: test_no_reverb" in proc.stdout
    named = subprocess.run(
        [
            str(ROOT / "egs" / "dns2020" / "run.sh"),
            "--db_dir",
            str(db),
            "--datadir",
            str(data),
            "--exp",
            str(tmp_path / "exp"),
            "--stage",
            "2",
            "--stop_stage",
            "2",
            "--test_sets",
            "test_with_reverb",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT / "egs" / "dns2020",
    )
    assert named.returncode == 1 and "--test_sets names test_with_reverb, but there is no" in named.stdout
    planned = subprocess.run(
        [
            str(ROOT / "egs" / "dns2020" / "run.sh"),
            "--db_dir",
            str(db),
            "--datadir",
            str(data),
            "--exp",
            str(tmp_path / "exp"),
            "--stage",
            "3",
            "--kd_configs",
            str(broken),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT / "egs" / "dns2020",
    )
    assert planned.returncode != 0 and f"{broken}:2: invalid YAML" in planned.stderr
    assert not (tmp_path / "exp" / "teacher_uformer").exists()  # nothing trained
    shutil.rmtree(db / "datasets/test_set/synthetic/no_reverb")
    none = subprocess.run(
        [
            str(ROOT / "egs" / "dns2020" / "local" / "data.sh"),
            "--db_dir",
            str(db),
            "--out_dir",
            str(tmp_path / "data2"),
            "--num_valid",
            "2",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT / "egs" / "dns2020",
    )
    assert none.returncode == 1 and "no synthetic test set" in none.stderr


DNS_MINI = ROOT.parent / "shared" / "data" / "dns_mini"


@pytest.mark.skipif(not DNS_MINI.is_dir(), reason=f"{DNS_MINI} is absent (real recordings shared beside the project)")
def test_dns2020_data_stages_on_the_real_dns_mini_tree(tmp_path):
    """The recipe's data stages on real recordings in the challenge's layout (only no_reverb there)."""
    data = tmp_path / "data"
    proc = run_in(
        "dns2020",
        "run.sh",
        "--db_dir",
        str(DNS_MINI),
        "--datadir",
        str(data),
        "--exp",
        str(tmp_path / "exp"),
        "--stage",
        "1",
        "--stop_stage",
        "2",
        "--data_opts",
        "--num_valid 20",
    )
    assert "test_with_reverb" in proc.stdout and (data / "test_sets").read_text().split() == ["test_no_reverb"]
    train, valid = read_table(data / "train" / "utt2spk"), read_table(data / "valid" / "utt2spk")
    noise = read_table(data / "noise_train" / "wav.scp")
    noise_valid = read_table(data / "noise_valid" / "wav.scp")
    assert len(train) + len(read_table(data / "valid_clean" / "wav.scp")) == 251
    assert len(noise) + len(noise_valid) == 100 and not set(noise) & set(noise_valid)
    assert not set(train.values()) & set(valid.values())  # validation readers never train
    test = read_table(data / "test_no_reverb" / "wav.scp")
    assert len(test) == 17 and "fileid_38" in test
    ref = read_table(data / "test_no_reverb" / "spk1.scp")
    assert all(ref[u].endswith(f"clean/clean_{u}.wav") for u in test)  # paired by file id


def test_dns2020_recipe_tiny(tmp_path):
    db = make_dns2020(tmp_path / "DNS-Challenge")
    exp = tmp_path / "exp"
    run_in(
        "dns2020",
        "run.sh",
        "--db_dir",
        str(db),
        "--datadir",
        str(tmp_path / "data"),
        "--exp",
        str(exp),
        "--conf_tag",
        "tiny",
        "--metrics",
        TINY_METRICS,
        "--data_opts",
        "--num_valid 2",
        *TINY_REPORT,
    )
    assert results_rows(exp)[:4] == ["noisy", "teacher_uformer", "student", "student_kd_atkl"]
    text = (exp / "RESULTS.md").read_text()
    assert "## test_no_reverb (3 utterances)" in text and "## test_with_reverb (3 utterances)" in text
    assert "noise_scp: ../noise_train/wav.scp" in (exp / "student" / "config.yaml").read_text()


@pytest.mark.parametrize("mics,channels", [("A", 4), ("AB", 8)])
def test_l3das23_data_prep(tmp_path, mics, channels):
    db = make_l3das23(tmp_path / "L3DAS23")
    out = tmp_path / "data"
    run_in("l3das23", "local/data.sh", "--db_dir", str(db), "--out_dir", str(out), "--mics", mics, "--nj", "1")
    for subset in ("train", "valid", "test"):
        validate(out / subset)
        check_pairs(out / subset, 16000, channels=channels)
    train_spk = set(read_table(out / "train" / "utt2spk").values())
    valid_spk = set(read_table(out / "valid" / "utt2spk").values())
    assert len(valid_spk) == 1 and len(train_spk) == 3 and not train_spk & valid_spk
    assert sorted(read_table(out / "test" / "wav.scp")) == [
        "1100-5000-0000",
        "1100-5000-0001",
        "1137-5001-0000",
        "1137-5001-0001",
    ]
    assert read_table(out / "test" / "text")["1137-5001-0001"] == "WORDS OF 1137-5001-0001"
    wav = read_table(out / "test" / "wav.scp")["1100-5000-0000"]
    if mics == "A":
        assert wav.endswith("L3DAS23_Task1_dev/data/1100-5000-0000_A.wav")  # read in place
    else:  # channels 0-3 are mic A, 4-7 mic B, as the challenge's loader stacks them
        merged = sf.read(wav)[0]
        a = sf.read(db / "L3DAS23_Task1_dev" / "data" / "1100-5000-0000_A.wav")[0]
        b = sf.read(db / "L3DAS23_Task1_dev" / "data" / "1100-5000-0000_B.wav")[0]
        assert np.array_equal(merged, np.concatenate([a, b], axis=1))


def test_l3das23_missing_label_is_named(tmp_path):
    db = make_l3das23(tmp_path / "L3DAS23")
    (db / "L3DAS23_Task1_dev" / "labels" / "1137-5001-0000.wav").unlink()
    proc = subprocess.run(
        [str(ROOT / "egs" / "l3das23" / "local" / "data.sh"), "--db_dir", str(db), "--out_dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT / "egs" / "l3das23",
    )
    assert proc.returncode == 1
    assert "data/1137-5001-0000_A.wav: no target 1137-5001-0000.wav in" in proc.stderr
    assert not (tmp_path / "data" / "test").exists()


def test_l3das23_recipe_tiny(tmp_path):
    db = make_l3das23(tmp_path / "L3DAS23")
    exp = tmp_path / "exp"
    run_in(
        "l3das23",
        "run.sh",
        "--db_dir",
        str(db),
        "--datadir",
        str(tmp_path / "data"),
        "--exp",
        str(exp),
        "--conf_tag",
        "tiny",
        "--metrics",
        TINY_METRICS + ",l3das23",
        "--data_opts",
        "--nj 1",
        *TINY_REPORT,
    )
    assert results_rows(exp)[:4] == ["noisy", "teacher_dpdcrn", "student_dpdcrn", "student_kd_i2srf_tfckd"]
    assert "L3DAS23 unavailable: no ASR model" in (exp / "RESULTS.md").read_text()
    enhanced = read_table(exp / "student_kd_i2srf_tfckd" / "enhanced" / "test" / "wav.scp")
    assert sf.info(next(iter(enhanced.values()))).channels == 1  # 4 channels in, the mono target out


def test_voxceleb1_data_prep(tmp_path):
    db = make_voxceleb1(tmp_path / "VoxCeleb1")
    out = tmp_path / "data"
    run_in("voxceleb1", "local/data.sh", "--db_dir", str(db), "--out_dir", str(out))
    for subset in ("train", "valid", "test"):
        proc = subprocess.run(
            [str(ROOT / "utils" / "validate_data_dir.sh"), "--no-spk1", str(out / subset)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    spk = {s: set(read_table(out / s / "utt2spk").values()) for s in ("train", "valid", "test")}
    assert spk["train"] == spk["valid"] == {"id10001", "id10002", "id10003"} and spk["test"] == {"id10270", "id10271"}
    train, valid = read_table(out / "train" / "wav.scp"), read_table(out / "valid" / "wav.scp")
    assert "id10001-01Vid0xYz_-00002" in valid and not set(train) & set(valid)  # iden_split 2 held out
    assert len(valid) == 6 and len(train) == 6
    assert train["id10001-01Vid1xYz_-00001"].endswith("wav/id10001/01Vid1xYz_/00001.wav")
    trials = [line.split() for line in (out / "test" / "trials").read_text().splitlines()]
    assert len(trials) == 28 and sum(t[2] == "target" for t in trials) == 12  # 8 files: C(8,2); 2 x C(4,2) target
    test_utts = read_table(out / "test" / "wav.scp")
    assert all(t[0] in test_utts and t[1] in test_utts for t in trials)
    for a, b, label in trials:
        assert (label == "target") == (a.split("-")[0] == b.split("-")[0])
    vtrials = [line.split() for line in (out / "valid" / "trials").read_text().splitlines()]
    assert {t[2] for t in vtrials} == {"target", "nontarget"}
    assert all(t[0] in valid and t[1] in valid for t in vtrials)
    # a trial naming a missing file: file and line in the error
    with open(db / "veri_test2.txt", "a") as f:
        f.write("1 id10270/nope/00001.wav id10271/nope/00002.wav\n")
    proc = subprocess.run(
        [str(ROOT / "egs" / "voxceleb1" / "local" / "data.sh"), "--db_dir", str(db), "--out_dir", str(tmp_path / "d2")],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT / "egs" / "voxceleb1",
    )
    assert proc.returncode == 1 and "veri_test2.txt:29: id10270/nope/00001.wav is not in" in proc.stderr
