"""Recipes: the KD plan, egs/mini/run.sh end to end on a tiny corpus (and its resume), stage markers,
--help (every config's dry run: tests/test_dry_run.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT


def test_kd_plan_pairs_the_named_systems(tmp_path, monkeypatch):
    from sekd.bin.plan import main

    conf = ROOT / "egs" / "mini" / "conf"
    monkeypatch.chdir(conf.parent)
    rows = subprocess.run(
        [
            sys.executable,
            "-m",
            "sekd.bin.plan",
            "--teacher_config",
            "conf/teacher.yaml",
            "--student_config",
            "conf/student.yaml",
            "--kd_configs",
            "all",
            "--seeds",
            "0,3",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    fields = [r.split("\t") for r in rows]
    assert [f[1] for f in fields if f[0] == "teacher"][0] == "teacher"
    assert len([f for f in fields if f[0] == "kd"]) == 2 * len(list((conf / "kd").glob("*.yaml")))
    atkl = {f[2]: f for f in fields if f[1].startswith("student_kd_atkl")}
    assert atkl["0"][1:] == [
        "student_kd_atkl",
        "0",
        "conf/student.yaml",
        "conf/kd/atkl.yaml",
        "teacher_uformer",
        "student",
        "-",
        "student_kd_atkl",
    ]
    assert atkl["3"][1] == "student_kd_atkl_seed3"
    bad = tmp_path / "bad.yaml"
    bad.write_text("kd:\n  teacher_config: conf/nope.yaml\n  terms: [{name: output}]\n")
    assert (
        main(
            ["--teacher_config", "conf/teacher.yaml", "--student_config", "conf/student.yaml", "--kd_configs", str(bad)]
        )
        == 2
    )


def test_mini_teacher_student_ratio():
    """The mini student is about 10 % of the teacher: the low end of the papers' 10-30 %, so that the
    converged teacher leaves its student a gap to close (issue 15)."""
    from sekd.models import build_model, count_parameters
    from sekd.train.config import build_config

    n = {}
    for role in ("teacher", "student"):
        cfg = build_config([ROOT / "egs" / "mini" / "conf" / f"{role}.yaml"])
        n[role] = count_parameters(build_model(cfg["model"]["name"], **cfg["model"]["args"]))
    assert 0.08 <= n["student"] / n["teacher"] <= 0.15, n


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parents[1])
    return subprocess.run(
        [str(ROOT / "egs" / "mini" / "run.sh"), *args], capture_output=True, text=True, env=env, timeout=900
    )


def test_mini_recipe_end_to_end(tmp_path):
    data, exp = tmp_path / "data", tmp_path / "exp"
    args = [
        "--datadir",
        str(data),
        "--exp",
        str(exp),
        "--teacher_model",
        "",  # train the teachers here
        "--data_opts",
        "--num_train 16 --num_valid 4 --num_test 4 --num_train_speakers 4 "
        "--num_valid_speakers 2 --num_test_speakers 2 --nj 1",
        "--train_opts",
        "--train.max_epochs 1 --data.batch_size 4 --data.segment 1.0 --train.num_threads 1",
        # two KD methods with different teachers (atkl names the Uformer one), two seeds of the students
        "--kd_configs",
        "conf/kd/output.yaml conf/kd/atkl.yaml",
        "--seeds",
        "0,1",
        # intrusive, composite, non-intrusive, and a metric with no ASR model here: "unavailable"
        "--metrics",
        "pesq_wb,stoi,estoi,sisdr,csig,dnsmos_ovrl,l3das23",
        "--ngpu",
        "1",  # asks the job command for a GPU for training jobs only (the trainer falls back to CPU)
        "--train_nj",
        "2",
    ]  # two trainings at once in stages 4-5
    proc = _run(args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    logs = {p.name: p.read_text().splitlines()[2] for p in (exp / "student_kd_atkl").glob("log/*.log")}
    assert logs["train.log"] == "# Resources: --gpu 1"
    assert {"enhance_test.log", "score_test.log"} < set(logs) and all(
        not line.startswith("# Resources") for name, line in logs.items() if name != "train.log"
    ), logs
    results = (exp / "RESULTS.md").read_text()
    lines = results.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| System"))
    rows = [line.split(" | ") for line in lines[head + 2 :] if line.startswith("| ")][:6]
    assert [r[0][2:] for r in rows] == [
        "noisy",
        "teacher",
        "teacher_uformer",
        "student",
        "student_kd_atkl",
        "student_kd_output",
    ]
    assert [r[3] for r in rows] == ["-", "1", "1", "2", "2", "2"]  # seeds per system
    assert rows[4][2] == "atkl,output (teacher_uformer)" and "(student)" in rows[4][-8]  # its own baseline
    assert "4 utterances" in results and (exp / "RESULTS.csv").exists()
    assert "| CSIG | DNSMOS OVRL | L3DAS23 |" in lines[head] and "L3DAS23 unavailable: no ASR model" in results
    assert "| student_kd_atkl | teacher_uformer | student |" in results  # the KD comparison table
    assert (exp / "student_kd_atkl_seed1" / ".done").exists()
    for system in ("teacher", "teacher_uformer", "student", "student_kd_output", "student_kd_atkl_seed1"):
        assert (exp / system / ".done").exists()
        assert len((exp / system / "enhanced" / "test" / "wav.scp").read_text().splitlines()) == 4
        assert (exp / system / "scoring" / "test" / "pesq_wb.scp").exists()
    # TensorBoard: every system is one run under one log root, with the same tags, so curves overlay.
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    tb = EventMultiplexer().AddRunsFromDirectory(str(exp / "tensorboard"))
    tb.Reload()
    assert {"teacher", "teacher_uformer", "student", "student_seed1", "student_kd_atkl"} <= set(tb.Runs())
    for run in ("teacher", "student", "student_kd_atkl"):
        tags = tb.Runs()[run]["scalars"]
        assert {"epoch/task", "valid/sisnr", "train/lr"} <= set(tags), (run, tags)
        assert len(tb.Scalars(run, "valid/sisnr")) == 1  # one epoch, one validation point
    assert {"epoch/kd_atkl", "epoch/kd_output"} <= set(tb.Runs()["student_kd_atkl"]["scalars"])
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
    args = [
        "--datadir",
        str(data),
        "--exp",
        str(exp),
        "--stop_stage",
        "3",
        "--teacher_model",
        "",
        "--data_opts",
        "--num_train 4 --num_valid 2 --num_test 2 --num_train_speakers 2 "
        "--num_valid_speakers 1 --num_test_speakers 1 --nj 1",
        "--teacher_opts",
        "--train.no_such_key 1",
    ]
    proc = _run(args)
    assert proc.returncode != 0
    assert "unknown config key 'train.no_such_key'" in proc.stdout + proc.stderr
    assert (data / ".done").exists() and not (exp / "teacher" / ".done").exists()
    # --train_nj 2: two baseline students train at once; both fail, the stage stops naming them, no .done
    exp = tmp_path / "exp_parallel"
    proc = _run(
        [
            "--datadir",
            str(data),
            "--exp",
            str(exp),
            "--stage",
            "3",
            "--stop_stage",
            "4",
            "--teacher_model",
            "pretrained",
            "--seeds",
            "0,1",
            "--train_nj",
            "2",
            "--student_opts",
            "--train.no_such_key 1",
        ]
    )
    assert proc.returncode != 0
    failed = proc.stdout.split("these trainings failed (their logs say why): ")[1].split("\n")[0].split()
    assert sorted(failed) == ["student", "student_ablation_mtakd"]  # the first two; no more were started
    assert not (exp / "student_seed1").exists()
    assert not any((exp / s / ".done").exists() for s in failed) and not (exp / ".train_failed").exists()


def test_paper_size_configs_match_presets():
    """egs/TEMPLATE/conf/<preset>.yaml is exactly the preset whose size the model tests check."""
    from sekd.models import PRESETS
    from sekd.train.config import build_config

    for preset, (name, args) in PRESETS.items():
        cfg = build_config([ROOT / "egs" / "TEMPLATE" / "conf" / f"{preset.replace('.', '_')}.yaml"])
        assert cfg["model"] == {"name": name, "args": args}, preset


@pytest.mark.parametrize("recipe,driver", [("mini", "enh.sh"), ("mini_spk", "sv.sh")])
def test_help_lists_every_option_with_its_default(recipe, driver):
    """./run.sh --help (ESPnet-style): each option of the driver's options block, with its default."""
    import re

    text = (ROOT / "egs" / "TEMPLATE" / driver).read_text()
    block = text[text.index("# Options (override") : text.index("# shellcheck disable=SC2034")]
    options = {m[0]: m[1] or m[2] for m in re.findall(r'^([a-z_]+)=(?:"([^"]*)"|(\S*))', block, re.M)}
    assert {"stage", "kd_configs", "teacher_model", "seeds"} <= set(options)
    proc = subprocess.run(["./run.sh", "--help"], cwd=ROOT / "egs" / recipe, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for name, default in options.items():
        assert f"  --{name} [{default}]" in proc.stdout, (name, default)
