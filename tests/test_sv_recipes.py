"""Speaker-verification recipes: egs/mini_spk end to end on a tiny synthesized corpus, egs/voxceleb1 with
--conf_tag tiny on the fixture tree, and the stage driver's checks (egs/TEMPLATE/sv.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, make_sv_data_dir
from corpus_fixtures import make_voxceleb1

TINY_TEACHER = (
    "--model.args.channels 16 --model.args.mfa_channels 32 --model.args.se_bottleneck 8 "
    "--model.args.attention_bottleneck 8 --model.args.embed_dim 16"
)
TINY_STUDENT = TINY_TEACHER.replace("channels 16", "channels 8").replace("mfa_channels 32", "mfa_channels 16")


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parents[1])
    return env


def _run(recipe: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(ROOT / "egs" / recipe / "run.sh"), *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
        cwd=ROOT / "egs" / recipe,
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _rows(results: str) -> list[list[str]]:
    lines = results.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| System"))
    rows = []
    for line in lines[head + 2 :]:
        if not line.startswith("| "):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return [lines[head].strip("|").split("|")] + rows


def test_mini_spk_end_to_end(tmp_path):
    data, exp = tmp_path / "data", tmp_path / "exp"
    args = [
        "--datadir",
        str(data),
        "--exp",
        str(exp),
        "--data_opts",
        "--num_train_speakers 4 --num_test_speakers 3 --utts_per_speaker 4 "
        "--valid_utts_per_speaker 2 --test_utts_per_speaker 2 --nj 1",
        "--train_opts",
        "--train.max_epochs 1 --data.batch_size 4 --data.segment 0.5 --train.num_threads 1 --train.log_every_steps 1",
        "--teacher_opts",
        TINY_TEACHER,
        "--student_opts",
        TINY_STUDENT,
        "--report_opts",
        "--profile_seconds 0.25 --no_plots",
    ]
    start = time.time()
    proc = _run("mini_spk", *args)
    first = time.time() - start
    for subset in ("train", "valid", "test"):
        assert (data / subset / "utt2spk").exists()
    test_trials = (data / "test" / "trials").read_text().splitlines()
    assert len(test_trials) == 15 and sum(t.endswith(" target") for t in test_trials) == 3  # C(6,2); 3 x C(2,2)
    train_spk = set((data / "train" / "spk2utt").read_text().split()[::5])  # speaker, then its 4 utterances
    assert set((data / "valid" / "spk2utt").read_text().split()[::3]) == train_spk  # held-out utterances
    assert not train_spk & set((data / "test" / "spk2utt").read_text().split()[::3])  # unseen talkers
    results = (exp / "RESULTS.md").read_text()
    table = _rows(results)
    head, rows = [c.strip() for c in table[0]], table[1:]
    assert head[6:9] == ["EER (%)", "minDCF (0.01)", "minDCF (0.05)"] and head[-1] == "RTF embed"
    assert [r[0] for r in rows] == [
        "teacher",
        "student",
        "student_kd_embedding_kd",
        "student_kd_imlkd",
        "student_kd_logit_kd",
    ]
    assert [r[1] for r in rows] == ["teacher", "student", "kd", "kd", "kd"]
    assert all(r[6].strip("*").replace(".", "").isdigit() for r in rows)  # an EER for every system
    assert "## test (15 trials)" in results and "| student_kd_imlkd | teacher | student |" in results
    for system in ("teacher", "student", "student_kd_logit_kd", "student_kd_embedding_kd", "student_kd_imlkd"):
        assert len((exp / system / "embeddings" / "test" / "embeddings.scp").read_text().splitlines()) == 6
        result = json.loads((exp / system / "scoring" / "test" / "result.json").read_text())
        assert result["num_trials"] == 15 and result["scoring"] == {"method": "cosine"}
    imlkd = json.loads((exp / "student_kd_imlkd" / "model_info.json").read_text())["history"][0]
    assert imlkd["kd_imlkd_ig_crops"] == 16 and imlkd["kd_seconds"] > 0  # the IG cost, counted
    assert "crop_slots: " in (exp / "student_kd_imlkd" / "config.yaml").read_text()
    assert "validate_data_dir.sh: Successfully validated" in proc.stdout

    # A second run finds every step done and only redoes the report.
    start = time.time()
    again = _run("mini_spk", *args)
    assert "already trained" in again.stdout and "already scored" in again.stdout
    assert time.time() - start < max(30.0, first / 2)


def test_voxceleb1_recipe_tiny(tmp_path):
    db = make_voxceleb1(tmp_path / "VoxCeleb1")
    exp = tmp_path / "exp"
    _run(
        "voxceleb1",
        "--db_dir",
        str(db),
        "--datadir",
        str(tmp_path / "data"),
        "--exp",
        str(exp),
        "--conf_tag",
        "tiny",
        "--report_opts",
        "--profile_seconds 0.25 --no_plots",
    )
    results = (exp / "RESULTS.md").read_text()
    assert "## test (28 trials)" in results and "## test_asnorm (28 trials)" in results
    assert [r[0] for r in _rows(results)[1:]] == [
        "teacher",
        "student",
        "student_kd_embedding_kd",
        "student_kd_imlkd",
        "student_kd_logit_kd",
    ]
    asnorm = json.loads((exp / "student_kd_imlkd" / "scoring" / "test_asnorm" / "result.json").read_text())
    assert asnorm["scoring"]["method"] == "asnorm" and asnorm["scoring"]["cohort"] == 3  # the 3 training speakers
    cfg = (exp / "student_kd_imlkd" / "config.yaml").read_text()
    assert "channels: 8" in cfg and "steps_per_epoch: 2" in cfg  # the tiny overlays were applied


def test_mini_spk_student_is_30_percent_of_the_teacher():
    from sekd.models import build_model, count_parameters
    from sekd.train.config import build_config

    n = {}
    for role in ("teacher", "student"):
        cfg = build_config([ROOT / "egs" / "mini_spk" / "conf" / f"{role}.yaml"])
        n[role] = count_parameters(build_model(cfg["model"]["name"], **cfg["model"]["args"]))
    assert 0.25 <= n["student"] / n["teacher"] <= 0.35, n
    vox = {
        role: build_config([ROOT / "egs" / "voxceleb1" / "conf" / f"{role}.yaml"])["model"]["args"]["channels"]
        for role in ("teacher", "student")
    }
    assert vox == {"teacher": 1024, "student": 512}  # IML-KD's pair


@pytest.mark.parametrize("problem", ["no_trials", "bad_norm"])
def test_sv_stage_driver_checks(tmp_path, problem):
    data = tmp_path / "data"
    for subset, seed in (("train", 1), ("valid", 2), ("test", 3)):
        make_sv_data_dir(data / subset, 2, 2, 0.5, seed=seed)
    (data / "valid" / "trials").unlink()
    opts = ["--score_norm", "cosine znorm"] if problem == "bad_norm" else []
    proc = subprocess.run(
        [
            str(ROOT / "egs" / "mini_spk" / "sv.sh"),
            "--datadir",
            str(data),
            "--exp",
            str(tmp_path / "exp"),
            "--stage",
            "2",
            "--stop_stage",
            "2",
            *opts,
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        cwd=ROOT / "egs" / "mini_spk",
    )
    assert proc.returncode == 1
    if problem == "bad_norm":
        assert "--score_norm takes cosine and/or asnorm, not 'znorm'" in proc.stderr
    else:
        assert f"{data}/valid/trials: missing or empty" in proc.stderr
