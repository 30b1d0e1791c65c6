"""Recipes: every config builds; egs/mini/run.sh runs end to end on a tiny corpus and resumes."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

CONFS = sorted(p for pattern in ("*/conf/*.yaml", "*/conf/tuning/*.yaml") for p in (ROOT / "egs").glob(pattern))
KD_CONFS = sorted(p for p in (ROOT / "egs").glob("*/conf/kd/*.yaml"))


@pytest.mark.parametrize("conf", CONFS, ids=lambda p: str(p.relative_to(ROOT / "egs")))
def test_config_builds(conf):
    """ESPnet-style dry run of every recipe config: it must parse and build its model."""
    from sekd.models import build_model
    from sekd.train.config import build_config

    cfg = build_config([conf])
    model = build_model(cfg["model"]["name"], **cfg["model"]["args"])
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("conf", KD_CONFS, ids=lambda p: str(p.relative_to(ROOT / "egs")))
def test_kd_config_builds(conf):
    from sekd.distill import build_kd_term
    from sekd.train.config import build_config

    cfg = build_config([conf.parents[1] / "student.yaml", conf])
    assert cfg["kd"]["terms"], f"{conf} lists no KD terms"
    for term in cfg["kd"]["terms"]:
        build_kd_term(term["name"], **term.get("args", {}))


def test_mini_teacher_student_ratio():
    """The mini student is about 30% of the teacher, as in Distil-DCCRN."""
    from sekd.models import build_model, count_parameters
    from sekd.train.config import build_config

    n = {}
    for role in ("teacher", "student"):
        cfg = build_config([ROOT / "egs" / "mini" / "conf" / f"{role}.yaml"])
        n[role] = count_parameters(build_model(cfg["model"]["name"], **cfg["model"]["args"]))
    assert 0.25 <= n["student"] / n["teacher"] <= 0.35, n


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parents[1])
    return subprocess.run([str(ROOT / "egs" / "mini" / "run.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=900)


def test_mini_recipe_end_to_end(tmp_path):
    data, exp = tmp_path / "data", tmp_path / "exp"
    args = ["--datadir", str(data), "--exp", str(exp),
            "--data_opts", "--num_train 16 --num_valid 4 --num_test 4 --num_train_speakers 4 "
                           "--num_valid_speakers 2 --num_test_speakers 2 --nj 1",
            "--train_opts", "--train.max_epochs 1 --data.batch_size 4 --data.segment 1.0 --train.num_threads 1"]
    proc = _run(args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = (exp / "RESULTS.md").read_text()
    rows = [line for line in results.splitlines() if line.startswith("| ") and "System" not in line]
    assert [r.split("|")[1].strip() for r in rows] == ["noisy", "teacher", "student", "student_kd_output"]
    assert "4 utterances" in results and (exp / "RESULTS.csv").exists()
    for system in ("teacher", "student", "student_kd_output"):
        assert (exp / system / ".done").exists()
        assert len((exp / system / "enhanced" / "test" / "wav.scp").read_text().splitlines()) == 4
        assert (exp / system / "scoring" / "test" / "pesq_wb.scp").exists()
    assert (exp / "tensorboard" / "teacher").is_dir()
    for png in ("kd_gain_test.png", "spectrogram_test.png"):  # shown inline in RESULTS.md
        assert (exp / "plots" / png).stat().st_size > 10_000 and f"](plots/{png})" in results

    # A second run finds every step done and only redoes the report.
    start = time.time()
    again = _run(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already trained" in again.stdout and "already scored" in again.stdout
    assert time.time() - start < 60

    # Stage selection: --stage 8 only writes the report.
    (exp / "RESULTS.md").unlink()
    only = _run(args + ["--stage", "8"])
    assert only.returncode == 0 and (exp / "RESULTS.md").exists() and "stage 3" not in only.stdout


def test_failed_stage_leaves_no_marker(tmp_path):
    """A training run that fails does not leave a .done marker a rerun would trust."""
    data, exp = tmp_path / "data", tmp_path / "exp"
    args = ["--datadir", str(data), "--exp", str(exp), "--stop_stage", "3",
            "--data_opts", "--num_train 4 --num_valid 2 --num_test 2 --num_train_speakers 2 "
                           "--num_valid_speakers 1 --num_test_speakers 1 --nj 1",
            "--teacher_opts", "--train.no_such_key 1"]
    proc = _run(args)
    assert proc.returncode != 0
    assert "unknown config key 'train.no_such_key'" in proc.stdout + proc.stderr
    assert (data / ".done").exists() and not (exp / "teacher" / ".done").exists()


def test_paper_size_configs_match_presets():
    """egs/TEMPLATE/conf/<preset>.yaml is exactly the preset whose size the model tests check."""
    from sekd.models import PRESETS
    from sekd.train.config import build_config

    for preset, (name, args) in PRESETS.items():
        cfg = build_config([ROOT / "egs" / "TEMPLATE" / "conf" / f"{preset.replace('.', '_')}.yaml"])
        assert cfg["model"] == {"name": name, "args": args}, preset
