"""The report: KD students paired with their own baseline and teacher, gains, gap closed, seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sekd.bin.report import kd_table, main, table
from sekd.bin.report_rows import collect, gains


def _system(
    exp: Path,
    name: str,
    role: str | None,
    pesq: float,
    sisdr: float,
    model=("dccrn", {"w": 1}),
    teacher: str | None = None,
    group: str | None = None,
    seed: int | None = 0,
    baseline: str | None = None,
) -> None:
    """A scored system, and its row in exp/plan.json (as sekd.bin.plan writes it) unless ``role`` is None."""
    d = exp / name / "scoring" / "test"
    d.mkdir(parents=True)
    metrics = {"pesq_wb": {"mean": pesq, "failed": 0}, "sisdr": {"mean": sisdr, "failed": 0}}
    (d / "result.json").write_text(json.dumps({"num_utts": 4, "metrics": metrics}))
    if role:
        info = {
            "role": role,
            "model_name": model[0],
            "model_args": model[1],
            "num_params": 1000,
            "kd": [name.split("_kd_")[1].split("_seed")[0]] if role == "kd" else [],
            "teacher": f"exp/{teacher}/checkpoints/best.pt" if teacher else None,
        }
        (exp / name / "model_info.json").write_text(json.dumps(info))
        plan = exp / "plan.json"
        systems = json.loads(plan.read_text())["systems"] if plan.exists() else []
        systems.append(
            {
                "kind": {"kd": "distill"}.get(role, role),
                "system": name,
                "group": group or name,
                "seed": None if role == "teacher" else seed,
                "teacher": teacher,
                "baseline": baseline,
            }
        )
        plan.write_text(json.dumps({"systems": systems}))


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    exp = tmp_path / "exp"
    _system(exp, "noisy", None, 1.2, 3.0)
    _system(exp, "teacher", "teacher", 2.0, 12.0, model=("dccrn", {"w": 4}))
    _system(exp, "teacher_manner", "teacher", 2.4, 14.0, model=("manner", {"h": 8}))
    _system(exp, "student", "student", 1.6, 9.0)
    _system(exp, "student_seed1", "student", 1.8, 10.0, group="student", seed=1)
    _system(exp, "student_manner", "student", 2.0, 11.0, model=("manner", {"h": 6}))
    _system(exp, "student_kd_at", "kd", 1.8, 10.0, teacher="teacher", baseline="student")
    _system(
        exp,
        "student_kd_at_seed1",
        "kd",
        1.8,
        11.0,
        teacher="teacher",
        group="student_kd_at",
        seed=1,
        baseline="student_seed1",
    )
    _system(
        exp,
        "student_kd_mvat",
        "kd",
        1.9,
        12.0,
        model=("manner", {"h": 6}),
        teacher="teacher_manner",
        baseline="student_manner",
    )
    return exp


def test_seeds_merge_and_kd_pairs_with_its_own_baseline(exp):
    rows = {r["system"]: r for r in collect(exp, "test")}
    assert set(rows) == {
        "noisy",
        "teacher",
        "teacher_manner",
        "student",
        "student_manner",
        "student_kd_at",
        "student_kd_mvat",
    }
    assert rows["student"]["seeds"] == 2 and rows["student"]["metrics"]["pesq_wb"] == pytest.approx(1.7)
    assert rows["student"]["spread"]["sisdr"] == pytest.approx(0.7071, abs=1e-4)  # sample std of 9, 10
    assert rows["student_kd_at"]["baseline"] == "student"
    assert rows["student_kd_mvat"]["baseline"] == "student_manner"  # same model, not the first student
    all_rows = list(rows.values())
    gain, gap = gains(rows["student_kd_at"], all_rows, "sisdr")  # 10.5 vs 9.5, teacher 12
    assert gain == pytest.approx(1.0) and gap == pytest.approx(0.4)
    gain, gap = gains(rows["student_kd_mvat"], all_rows, "pesq_wb")  # 1.9 vs 2.0, teacher 2.4: worse
    assert gain == pytest.approx(-0.1) and gap == pytest.approx(-0.25)


def test_tables_show_gain_gap_and_spread(exp):
    rows = collect(exp, "test")
    text = "\n".join(table(rows, "sisdr") + kd_table(rows))
    assert "SI-SDR gain over baseline" in text and "gap closed" in text
    assert "+1.00 (student) | 40 %" in text
    assert "9.50 ± 0.71" in text
    assert "| student_kd_mvat | teacher_manner | student_manner | -0.100 (-25 %) | +1.00 (33 %) |" in text


def test_report_entrypoint_writes_md_and_csv(exp):
    assert main(["--exp_dir", str(exp), "--no_plots"]) == 0
    md = (exp / "RESULTS.md").read_text()
    assert md.count("| student_kd_") == 4  # two KD rows in the main table, two in the KD table
    csv = (exp / "RESULTS.csv").read_text().splitlines()
    assert csv[0].split(",")[:6] == ["set", "system", "role", "kd", "teacher", "baseline"]
    assert any(line.startswith("test,student,student,,,,2,") for line in csv)


def test_without_a_plan_nothing_is_parsed_out_of_names(exp):
    """Seeds, teachers and baselines come from exp/plan.json only: without it every directory is its own
    row, nothing is paired, and RESULTS.md says why."""
    (exp / "plan.json").unlink()
    rows = {r["system"]: r for r in collect(exp, "test")}
    assert {"student", "student_seed1", "student_kd_at", "student_kd_at_seed1"} <= set(rows)
    assert rows["student"]["seeds"] == 1 and rows["student_kd_at"]["baseline"] is None
    assert main(["--exp_dir", str(exp), "--no_plots"]) == 0
    assert "plan.json is missing" in (exp / "RESULTS.md").read_text()


def test_training_time_and_summary_come_from_model_info(tmp_path, capsys):
    """The Train column and the line the recipe logs after a training read model_info.json, not the log."""
    d = tmp_path / "student"
    d.mkdir()
    (d / "train.log").write_text("2026-01-01 10:00:00 training\n2026-01-01 10:30:00 epoch 2 done: valid SI-SNR 9 dB\n")
    (d / "model_info.json").write_text(
        json.dumps(
            {
                "role": "student",
                "train_seconds": 450.0,
                "history": [
                    {"epoch": 1, "valid_sisnr": 8.0},
                    {"epoch": 2, "valid_sisnr": 9.5},
                    {"epoch": 3, "valid_sisnr": 9.25},
                ],
            }
        )
    )
    assert main(["--summary", str(d)]) == 0
    assert capsys.readouterr().out.strip() == "best validation SI-SNR 9.50 dB at epoch 2 of 3, 7.5 min"
    from sekd.bin.report_rows import _system_row

    (d / "scoring" / "test").mkdir(parents=True)
    (d / "scoring" / "test" / "result.json").write_text(json.dumps({"num_utts": 1, "metrics": {}}))
    assert _system_row(d, "test")["train_min"] == pytest.approx(7.5)  # 450 s, not the log's 30 min
    assert main(["--summary", str(tmp_path / "missing")]) == 1
    assert "model_info.json: not readable JSON" in capsys.readouterr().err


def test_spectrogram_panel_keeps_one_family_when_crowded(exp):
    from sekd.bin.report import panel_rows

    rows = collect(exp, "test")
    assert len(panel_rows(rows, "pesq_wb", most=8)) == 6  # few systems: all six models
    chosen = [r["system"] for r in panel_rows(rows, "pesq_wb", most=5)]  # kd_at +0.1 PESQ, kd_mvat -0.1
    assert chosen == ["teacher", "student", "student_kd_at"]


def test_no_gap_share_when_the_teacher_is_not_better(tmp_path):
    exp = tmp_path / "exp"
    _system(exp, "teacher", "teacher", 1.49, 9.4, model=("uformer", {}))
    _system(exp, "student", "student", 1.48, 9.0)
    _system(exp, "student_kd_atkl", "kd", 1.45, 9.5, teacher="teacher", baseline="student")
    rows = collect(exp, "test")
    kd = next(r for r in rows if r["role"] == "kd")
    assert gains(kd, rows, "pesq_wb") == (pytest.approx(-0.03), None)  # teacher only 0.01 better
    assert gains(kd, rows, "sisdr")[1] == pytest.approx(1.25)  # 0.5 dB of a 0.4 dB gap: 125 %


def test_unavailable_metric_is_text_not_a_number_and_best_is_bold(exp):
    for name in ("noisy", "teacher"):
        result = exp / name / "scoring" / "test" / "result.json"
        summary = json.loads(result.read_text())
        summary["metrics"]["l3das23"] = {
            "mean": None,
            "std": None,
            "n": 0,
            "failed": 0,
            "unavailable": "no ASR model given",
        }
        result.write_text(json.dumps(summary))
    assert main(["--exp_dir", str(exp), "--no_plots"]) == 0
    md = (exp / "RESULTS.md").read_text()
    assert "L3DAS23 unavailable: no ASR model given." in md
    noisy = next(line for line in md.splitlines() if line.startswith("| noisy |"))
    assert "| unavailable |" in noisy
    teacher_manner = next(line for line in md.splitlines() if line.startswith("| teacher_manner |"))
    assert "**2.400**" in teacher_manner and "**14.00**" in teacher_manner  # best of each column


def test_systems_of_one_model_config_are_profiled_once(tmp_path, monkeypatch):
    """A baseline student and its KD student (same model config) share one cost profile; another
    config, or another audio length, is profiled again; a rerun reads costs.json."""
    import sekd.bin.report_rows as report
    import sekd.models.profile as profile

    calls = []
    monkeypatch.setattr(
        profile,
        "profile_model",
        lambda name, args, seconds: calls.append((name, args, seconds)) or {"params": len(calls)},
    )
    monkeypatch.setattr(report, "_COST_CACHE", {})
    dirs = {}
    for name, width in (("student", 1), ("student_kd_at", 1), ("teacher", 4)):
        dirs[name] = tmp_path / name
        dirs[name].mkdir()
        (dirs[name] / "config.yaml").write_text(f"model: {{name: dccrn, args: {{w: {width}}}}}\n")
    costs = {name: report.model_costs(d, 0.5) for name, d in dirs.items()}
    assert calls == [("dccrn", {"w": 1}, 0.5), ("dccrn", {"w": 4}, 0.5)]
    assert costs["student"] == costs["student_kd_at"] == {"params": 1} and costs["teacher"] == {"params": 2}
    assert json.loads((dirs["student_kd_at"] / "costs.json").read_text())["costs"] == {"params": 1}
    monkeypatch.setattr(report, "_COST_CACHE", {})  # a new report process: costs.json, no profiling
    assert report.model_costs(dirs["student_kd_at"], 0.5) == {"params": 1} and len(calls) == 2
    report.model_costs(dirs["student"], 1.0)  # another audio length: measured again
    assert calls[-1] == ("dccrn", {"w": 1}, 1.0)
