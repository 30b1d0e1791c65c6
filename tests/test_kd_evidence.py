"""Evidence for KD: paired confidence intervals, ablation baselines, pretrained teachers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sekd.metrics.paired import paired_bootstrap, paired_differences

from conftest import ROOT, make_data_dir, recipe_env


# -- paired intervals ---------------------------------------------------------
def test_constant_difference_has_a_zero_width_interval():
    ci = paired_bootstrap(np.full((3, 50), 0.25))
    assert (ci.mean, ci.low, ci.high) == pytest.approx((0.25, 0.25, 0.25))
    assert ci.significant and (ci.seeds, ci.utterances) == (3, 50)


def test_interval_width_matches_the_standard_error():
    # differences 0.5 +- 1 (alternating): mean 0.5, std 1, so the 95 % interval is 0.5 +- 1.96 / sqrt(U)
    u = 1000
    d = (0.5 + np.where(np.arange(u) % 2, 1.0, -1.0))[None]
    ci = paired_bootstrap(d, n_boot=8000)
    assert ci.mean == pytest.approx(0.5)
    half = 1.96 / np.sqrt(u)
    assert ci.low == pytest.approx(0.5 - half, abs=0.2 * half) and ci.high == pytest.approx(0.5 + half, abs=0.2 * half)
    # centred on zero: the interval holds zero, not significant
    assert not paired_bootstrap(d - 0.5).significant


def test_seed_variation_widens_the_interval():
    # every utterance gains exactly the seed's offset: utterances alone would give zero width
    d = np.array([0.0, 0.2, 0.4])[:, None] * np.ones((3, 200))
    ci = paired_bootstrap(d)
    assert ci.mean == pytest.approx(0.2) and ci.high - ci.low > 0.1


def test_differences_pair_seeds_and_drop_undefined_utterances():
    kd = [{"a": 2.0, "b": 3.0, "c": float("nan")}, {"a": 1.0, "b": 1.0, "c": 1.0}]
    base = [{"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 0.0, "b": 2.0, "c": 0.0, "d": 5.0}]
    d = paired_differences(kd, base)
    assert d.tolist() == [[1.0, 2.0], [1.0, -1.0]]  # c undefined in one run, d scored in one only
    assert paired_differences(kd, base, sign=-1.0).tolist() == [[-1.0, -2.0], [-1.0, 1.0]]  # lower is better
    with pytest.raises(ValueError, match="pair them by seed"):
        paired_differences(kd, base[:1])


# -- the report with per-utterance scores and a plan ---------------------------
def _scored(exp: Path, name: str, role: str | None, scores: dict[str, np.ndarray], kd: list[str] = ()) -> None:
    d = exp / name / "scoring" / "test"
    d.mkdir(parents=True)
    metrics = {}
    for m, values in scores.items():
        (d / f"{m}.scp").write_text("".join(f"utt{i:03d} {v:.6f}\n" for i, v in enumerate(values)))
        metrics[m] = {"mean": float(np.mean(values)), "failed": 0}
    (d / "result.json").write_text(json.dumps({"num_utts": len(next(iter(scores.values()))), "metrics": metrics}))
    if role:
        (exp / name / "model_info.json").write_text(
            json.dumps(
                {
                    "role": role,
                    "model_name": "dccrn",
                    "model_args": {},
                    "num_params": 10,
                    "kd": list(kd),
                    "history": [{"epoch": e, "valid_sisnr": 10 + e} for e in (1, 2, 3)] if role == "teacher" else [],
                }
            )
        )


def test_report_pairs_kd_with_its_ablation_and_gives_intervals(tmp_path):
    from sekd.bin.plan import plan, with_paths
    from sekd.bin.report import kd_table, main
    from sekd.bin.report_rows import collect, paired_gain

    exp = tmp_path / "exp"
    rng = np.random.default_rng(0)
    base = rng.uniform(1.2, 2.0, size=100)
    _scored(exp, "noisy", None, {"pesq_wb": base - 0.5})
    _scored(exp, "teacher", "teacher", {"pesq_wb": base + 0.5})
    for seed, suffix in ((0, ""), (1, "_seed1")):
        _scored(exp, f"student{suffix}", "student", {"pesq_wb": base})
        # the ablation (mtakd's ground-truth task, no teacher) already gains +0.1; the KD student +0.15
        _scored(exp, f"student_ablation_mtakd{suffix}", "student", {"pesq_wb": base + 0.1 + 0.01 * seed}, ["mtakd"])
        _scored(exp, f"student_kd_mtakd{suffix}", "kd", {"pesq_wb": base + 0.15 + 0.01 * seed}, ["mtakd"])
    conf = tmp_path / "conf"
    (conf / "kd").mkdir(parents=True)
    (conf / "ablation").mkdir()
    for name in ("teacher", "student"):
        (conf / f"{name}.yaml").write_text("model: {name: dccrn}\n")
    (conf / "ablation" / "mtakd.yaml").write_text("kd:\n  terms: [{name: mtakd, args: {teacher: false}}]\n")
    (conf / "kd" / "mtakd.yaml").write_text(
        f"kd:\n  ablation: {conf}/ablation/mtakd.yaml\n  terms: [{{name: mtakd}}]\n"
    )
    rows = plan(str(conf / "teacher.yaml"), str(conf / "student.yaml"), [str(conf / "kd" / "mtakd.yaml")], [0, 1])
    (exp / "plan.json").write_text(json.dumps({"systems": with_paths(rows, str(exp))}))

    by = {r["system"]: r for r in collect(exp, "test")}
    kd = by["student_kd_mtakd"]
    assert kd["baseline"] == "student_ablation_mtakd" and kd["teacher_row"] == "teacher"
    assert by["student_ablation_mtakd"]["seeds"] == 2 and by["student_ablation_mtakd"]["role"] == "student"
    ci = paired_gain(kd, list(by.values()), "pesq_wb")
    assert ci.mean == pytest.approx(0.05, abs=1e-5) and ci.significant and (ci.seeds, ci.utterances) == (2, 100)
    text = "\n".join(kd_table(list(by.values())))
    assert "| student_kd_mtakd | teacher | student_ablation_mtakd | +0.050 [+0.050, +0.050] * (13 %) |" in text

    assert main(["--exp_dir", str(exp), "--no_plots"]) == 0
    md = (exp / "RESULTS.md").read_text()
    assert "mtakd without a teacher (ablation)" in md
    assert "- teacher: best validation SI-SNR 13.00 dB at epoch 3 of 3" in md
    import csv

    with open(exp / "RESULTS.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["system"] == "student_kd_mtakd")
    assert float(row["pesq_wb_gain"]) == pytest.approx(0.05, abs=1e-5)
    assert float(row["pesq_wb_gain_low"]) <= 0.05 <= float(row["pesq_wb_gain_high"])
    assert row["baseline"] == "student_ablation_mtakd"


def test_gain_chart_and_learning_curves_are_drawn(tmp_path):
    from sekd.bin.plots import kd_gain_chart, learning_curves
    from sekd.bin.report_rows import collect

    exp = tmp_path / "exp"
    base = np.linspace(1.2, 2.0, 30)
    _scored(exp, "teacher", "teacher", {"pesq_wb": base + 0.5, "sisdr": base * 5 + 3})
    _scored(exp, "student", "student", {"pesq_wb": base, "sisdr": base * 5})
    _scored(exp, "student_kd_output", "kd", {"pesq_wb": base + 0.003, "sisdr": base * 5 + 1}, ["output"])
    (exp / "plan.json").write_text(
        json.dumps(
            {
                "systems": [
                    {"system": "teacher", "group": "teacher", "seed": None},
                    {"system": "student", "group": "student", "seed": 0},
                    {
                        "system": "student_kd_output",
                        "group": "student_kd_output",
                        "seed": 0,
                        "teacher": "teacher",
                        "baseline": "student",
                    },
                ]
            }
        )
    )
    rows = collect(exp, "test")
    assert kd_gain_chart(rows, tmp_path / "gain.png").stat().st_size > 5000
    assert learning_curves(rows, tmp_path / "curves.png").stat().st_size > 5000


# -- plan: pretrained teachers and ablations ----------------------------------
def _mini_plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sekd.bin.plan",
            "--teacher_config",
            "conf/teacher.yaml",
            "--student_config",
            "conf/student.yaml",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT / "egs" / "mini",
    )


def test_plan_names_pretrained_teachers_and_ablation_baselines(tmp_path):
    model = tmp_path / "t.zip"
    model.write_bytes(b"x")
    proc = _mini_plan(
        "--kd_configs",
        "conf/kd/mtakd.yaml conf/kd/atkl.yaml",
        "--seeds",
        "0,1",
        "--teacher_models",
        f"teacher={model}",
        "--json",
        str(tmp_path / "plan.json"),
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    assert all(len(r) == 9 for r in rows)
    by = {r[1]: r for r in rows}
    assert by["teacher"][7] == str(model) and by["teacher_uformer"][7] == "-"
    assert by["student_ablation_mtakd_seed1"][:5] == [
        "student",
        "student_ablation_mtakd_seed1",
        "1",
        "conf/student.yaml",
        "conf/ablation/mtakd.yaml",
    ]
    assert by["student_kd_mtakd_seed1"][5:7] == ["teacher", "student_ablation_mtakd_seed1"]
    assert by["student_kd_atkl"][5:7] == ["teacher_uformer", "student"]
    saved = {r["system"]: r for r in json.loads((tmp_path / "plan.json").read_text())["systems"]}
    assert saved["student_kd_mtakd_seed1"]["group"] == "student_kd_mtakd"
    assert saved["student_kd_mtakd_seed1"]["teacher_checkpoint"] == "exp/teacher/checkpoints/best.pt"
    # a bare path is the default teacher's; a name that is no teacher, or a missing file, is an error
    assert _mini_plan("--teacher_models", str(model)).stdout.split("\n")[0].split("\t")[7] == str(model)
    bad = _mini_plan("--teacher_models", f"teacher_nope={model}")
    assert bad.returncode == 2 and "teacher_nope, not a teacher of this recipe" in bad.stderr
    missing = _mini_plan("--teacher_models", "teacher=nope.zip")
    assert missing.returncode == 2 and "nope.zip: no such file" in missing.stderr
    # a directory: each teacher with a <dir>/<system>.zip takes it (a named file wins), the others train
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    for name in ("teacher", "teacher_uformer", "teacher_unused"):
        (shelf / f"{name}.zip").write_bytes(b"x")
    rows = [
        r.split("\t")
        for r in _mini_plan(
            "--kd_configs",
            "conf/kd/mtakd.yaml conf/kd/atkl.yaml conf/kd/mvat.yaml",
            "--teacher_models",
            f"{shelf} teacher={model}",
        ).stdout.splitlines()
    ]
    by = {r[1]: r[7] for r in rows if r[0] == "teacher"}
    assert by == {"teacher": str(model), "teacher_uformer": str(shelf / "teacher_uformer.zip"), "teacher_manner": "-"}


# -- training without a teacher (the ablation) ---------------------------------
def test_ablation_trains_teacher_free_terms_and_refuses_teacher_terms(tmp_path):
    from sekd.train.config import ConfigError, build_config
    from sekd.train.trainer import Trainer

    train = make_data_dir(tmp_path / "train", 4, seconds=0.5)
    overrides = [
        "--model.name",
        "dccrn",
        "--model.args",
        "{channels: [4, 8], rnn_units: 8, rnn_layers: 1}",
        "--data.batch_size",
        "2",
        "--data.segment",
        "0.5",
        "--train.max_epochs",
        "1",
        "--train.num_threads",
        "1",
    ]
    cfg = build_config([ROOT / "egs" / "mini" / "conf" / "ablation" / "mtakd.yaml"], overrides)
    trainer = Trainer(cfg, str(train), str(train), str(tmp_path / "exp"), progress=False)
    assert trainer.teacher is None and trainer.kd_terms[0].tasks == ["ground_truth"]
    noisy, clean = (torch.stack(x) for x in zip(trainer.train_set[0], trainer.train_set[1]))
    loss, parts = trainer.compute_loss(noisy, clean)
    loss.backward()
    assert "kd_mtakd" in parts and trainer.kd_terms[0].log_vars.grad is not None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.model.parameters())
    with pytest.raises(ConfigError, match="mtakd need a teacher checkpoint"):
        Trainer(
            build_config([ROOT / "egs" / "mini" / "conf" / "kd" / "mtakd.yaml"], overrides),
            str(train),
            str(train),
            str(tmp_path / "exp2"),
            progress=False,
        )


# -- pretrained models as recipe systems ---------------------------------------
def _checkpoint(tmp_path: Path) -> Path:
    from sekd.models import build_model
    from sekd.train.checkpoint import save_atomic

    torch.manual_seed(0)
    args = {"channels": [4, 8], "rnn_units": 8, "rnn_layers": 1}
    model = build_model("dccrn", **args)
    path = tmp_path / "sys" / "checkpoints" / "best.pt"
    save_atomic(
        {
            "model_name": "dccrn",
            "model_args": args,
            "state_dict": model.state_dict(),
            "config": {"data": {"sample_rate": 16000}},
            "num_params": 1,
            "role": "teacher",
        },
        path,
    )
    return path


def test_import_model_from_checkpoint_and_zip(tmp_path):
    from sekd.bin.import_model import main as import_main
    from sekd.bin.pack import main as pack_main

    ckpt = _checkpoint(tmp_path)
    valid = make_data_dir(tmp_path / "valid", 3, seconds=0.5)
    (ckpt.parents[1] / "model_info.json").write_text(
        json.dumps({"best_valid_sisnr": -99.0, "command": "python -m sekd.bin.train ...", "history": [{"epoch": 1}]})
    )
    zip_path = tmp_path / "teacher.zip"
    assert pack_main(["--checkpoint", str(ckpt), "--out", str(zip_path), "--no_profile"]) == 0
    for src, out in ((ckpt, tmp_path / "exp" / "a"), (zip_path, tmp_path / "exp" / "b")):
        assert import_main(["--model", str(src), "--out_dir", str(out), "--valid_dir", str(valid)]) == 0
        info = json.loads((out / "model_info.json").read_text())
        assert info["role"] == "teacher" and info["pretrained"]["path"] == str(src)
        assert info["command"] == "python -m sekd.bin.train ..." and info["history"] == [{"epoch": 1}]
        assert np.isfinite(info["measured_valid_sisnr"])
        saved = torch.load(out / "checkpoints" / "best.pt", weights_only=False)
        assert all(
            torch.equal(saved["state_dict"][k], v)
            for k, v in torch.load(ckpt, weights_only=False)["state_dict"].items()
        )
    # an existing system dir is never overwritten; a recorded score that is not reproduced is an error
    assert import_main(["--model", str(ckpt), "--out_dir", str(tmp_path / "exp" / "a")]) == 1
    out = tmp_path / "exp" / "c"
    assert (
        import_main(["--model", str(zip_path), "--out_dir", str(out), "--valid_dir", str(valid), "--expect_valid"]) == 1
    )
    assert not out.exists()


def test_recipe_takes_a_pretrained_teacher(tmp_path):
    """enh.sh --teacher_model: stage 3 trains nothing; the KD student distils from the given model;
    another file under the same teacher name is refused, a trained teacher is not silently reused."""

    from sekd.bin.pack import main as pack_main

    ckpt = _checkpoint(tmp_path)
    zip_path = tmp_path / "teacher.zip"
    assert pack_main(["--checkpoint", str(ckpt), "--out", str(zip_path), "--no_profile"]) == 0
    env = recipe_env()
    data, exp = tmp_path / "data", tmp_path / "exp"
    common = [
        "--datadir",
        str(data),
        "--exp",
        str(exp),
        "--data_opts",
        "--num_train 4 --num_valid 2 --num_test 2 --num_train_speakers 2 "
        "--num_valid_speakers 1 --num_test_speakers 1 --nj 1",
        "--train_opts",
        "--train.max_epochs 1 --data.batch_size 2 --data.segment 0.5 --train.num_threads 1 "
        "--model.args.channels [4,8] --model.args.rnn_units 8",
        "--kd_configs",
        "conf/kd/output.yaml",
    ]

    def run(*extra):
        return subprocess.run(
            [str(ROOT / "egs" / "mini" / "run.sh"), *common, *extra],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )

    proc = run("--stop_stage", "5", "--teacher_model", str(zip_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (exp / "teacher" / "train.log").exists() and "using the pretrained" in proc.stdout
    assert (exp / "teacher" / ".done").read_text().startswith("pretrained ")
    info = json.loads((exp / "student_kd_output" / "model_info.json").read_text())
    assert info["teacher"] == f"{exp}/teacher/checkpoints/best.pt"
    again = run("--stage", "3", "--stop_stage", "3", "--teacher_model", str(zip_path))
    assert again.returncode == 0 and "already in place" in again.stdout
    other = run("--stage", "3", "--stop_stage", "3", "--teacher_model", f"teacher={ckpt}")
    assert other.returncode != 0 and "holds another model" in other.stdout
    untrained = run("--stage", "3", "--stop_stage", "3", "--teacher_model", "")  # train one here
    assert untrained.returncode != 0 and "holds a pretrained model" in untrained.stdout
    # a plain checkpoint works the same way
    exp2 = tmp_path / "exp2"
    proc = subprocess.run(
        [
            str(ROOT / "egs" / "mini" / "run.sh"),
            *common[:2],
            "--exp",
            str(exp2),
            *common[4:],
            "--stage",
            "3",
            "--stop_stage",
            "3",
            "--teacher_model",
            f"teacher={ckpt}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (exp2 / "teacher" / "checkpoints" / "best.pt").exists() and not (exp2 / "teacher" / "train.log").exists()


# -- KD weights chosen on validation -------------------------------------------
def test_choose_weight_picks_the_best_validation_score(tmp_path):
    from sekd.bin.choose_weight import main as choose_main

    runs = []
    for scale, score in ((0.5, 10.0), (1.0, 11.0), (2.0, 11.5)):
        (tmp_path / str(scale)).mkdir()
        (tmp_path / str(scale) / "model_info.json").write_text(json.dumps({"best_valid_sisnr": score}))
        runs += ["--run", f"{scale}={tmp_path / str(scale)}"]
    assert choose_main(runs + ["--out", str(tmp_path / "c.json")]) == 0
    choice = json.loads((tmp_path / "c.json").read_text())
    assert choice["chosen"] == 2.0 and "0.5: 10.000, 1: 11.000, 2: 11.500" in choice["why"]
    (tmp_path / "2.0" / "model_info.json").write_text(json.dumps({"best_valid_eer": 3.0}))
    assert choose_main(runs + ["--out", str(tmp_path / "d.json")]) == 1  # mixed criteria: refused


def test_recipe_weight_sweep_chooses_on_validation(tmp_path):

    from sekd.bin.pack import main as pack_main

    zip_path = tmp_path / "teacher.zip"
    assert pack_main(["--checkpoint", str(_checkpoint(tmp_path)), "--out", str(zip_path), "--no_profile"]) == 0
    env = recipe_env()
    exp = tmp_path / "exp"
    proc = subprocess.run(
        [
            str(ROOT / "egs" / "mini" / "run.sh"),
            "--datadir",
            str(tmp_path / "data"),
            "--exp",
            str(exp),
            "--data_opts",
            "--num_train 4 --num_valid 2 --num_test 2 --num_train_speakers 2 --num_valid_speakers 1 "
            "--num_test_speakers 1 --nj 1",
            "--train_opts",
            "--train.max_epochs 1 --data.batch_size 2 --data.segment 0.5 --train.num_threads 1 "
            "--model.args.channels [4,8] --model.args.rnn_units 8",
            "--kd_configs",
            "conf/kd/output.yaml",
            "--seeds",
            "0,1",
            "--kd_weight_scales",
            "0.5,2",
            "--teacher_model",
            str(zip_path),
            "--stop_stage",
            "5",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    choice = json.loads((exp / "sweep" / "student_kd_output.json").read_text())
    scores = {c["scale"]: c["best_valid"] for c in choice["candidates"]}
    assert set(scores) == {0.5, 2.0} and scores[choice["chosen"]] == max(scores.values())
    for system in ("student_kd_output", "student_kd_output_seed1"):  # both seeds at the chosen scale
        from sekd.train.config import yaml_load

        cfg = yaml_load((exp / system / "config.yaml").read_text())
        assert float(cfg["kd"]["weight_scale"]) == choice["chosen"]
    assert proc.stdout.count("weight scale 0.5 (seed 0), to choose on validation") == 1  # swept once


def test_kd_step_benchmark_runs(tmp_path):
    train = make_data_dir(tmp_path / "train", 4, seconds=0.5)
    proc = subprocess.run(
        [
            sys.executable,
            "local/bench_kd_step.py",
            "--kd_configs",
            "conf/kd/output.yaml",
            "--train_dir",
            str(train),
            "--repeats",
            "1",
            "--batch_size",
            "2",
            "--segment",
            "0.5",
        ],
        cwd=ROOT / "egs" / "mini",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| output |"))
    assert row.endswith("x |") and float(row.split("|")[-2].strip().rstrip("x")) > 0


# -- the shipped mini teachers ---------------------------------------------------
MINI_PRETRAINED = ROOT / "egs" / "mini" / "pretrained"


@pytest.fixture(scope="module")
def mini_valid_set(tmp_path_factory):
    """The validation set that egs/mini's stage 1 synthesizes (its defaults, egs/mini/local/data.sh)."""
    from sekd.data.synth.mini_corpus import make_mini_corpus

    root = tmp_path_factory.mktemp("mini_valid")
    make_mini_corpus(
        root / "data",
        seed=0,
        num_train=0,
        num_valid=50,
        num_test=0,
        num_train_speakers=40,
        num_valid_speakers=5,
        num_test_speakers=10,
        snr_range=(-5.0, 15.0),
        nj=2,
    )
    return root / "data" / "valid"


@pytest.mark.parametrize("zip_path", sorted(MINI_PRETRAINED.glob("*.zip")), ids=lambda p: p.stem)
def test_shipped_mini_teacher_loads_and_reproduces_its_validation_score(zip_path, mini_valid_set, tmp_path):
    """Each egs/mini/pretrained/<system>.zip is the model its metadata describes: it was trained by
    the recipe from conf/<system>.yaml (command, budget, size), it loads, and on the validation set
    that stage 1 synthesizes (same seed and speakers) it scores the SI-SNR recorded in training."""
    import zipfile

    from sekd.bin.import_model import main as import_main
    from sekd.models import build_model, count_parameters
    from sekd.train.config import build_config

    name = zip_path.stem
    with zipfile.ZipFile(zip_path) as z:
        meta = json.loads(z.read("meta.json"))
    training = meta["training"]
    cfg = build_config([ROOT / "egs" / "mini" / "conf" / f"{name}.yaml"])
    assert training["command"].startswith(f"python -m sekd.bin.train --config conf/{name}.yaml")
    epochs = cfg["train"]["max_epochs"]
    assert training["epochs"] == epochs and training["steps"] == epochs * (1000 // cfg["data"]["batch_size"])
    assert training["git_commit"] and (MINI_PRETRAINED / "README.md").read_text().count(f"`{name}.zip`")
    metric = training.get("best_metric", "sisnr")  # what chose the checkpoint (MANNER: PESQ, as its official code)
    assert metric == cfg["train"]["best_metric"]
    curve = [h[f"valid_{metric}"] for h in training["history"]]
    assert max(curve) == pytest.approx(training[f"best_valid_{metric}"]) and len(curve) == epochs
    assert meta["model_name"] == cfg["model"]["name"]
    out = tmp_path / "exp" / name
    assert (
        import_main(
            [
                "--model",
                str(zip_path),
                "--out_dir",
                str(out),
                "--valid_dir",
                str(mini_valid_set),
                "--expect_valid",
                "--tolerance",
                "0.02",
            ]
        )
        == 0
    )
    info = json.loads((out / "model_info.json").read_text())
    assert info["model_args"] == cfg["model"]["args"]
    assert info["num_params"] == count_parameters(build_model(cfg["model"]["name"], **cfg["model"]["args"]))


def test_evaluate_puts_models_side_by_side_on_any_test_set(tmp_path):
    """Issue 16 item 5: one command enhances and scores a test set with several models."""
    import shutil

    import soundfile as sf

    from sekd.bin.evaluate import main as evaluate_main
    from sekd.bin.pack import main as pack_main

    ckpt = _checkpoint(tmp_path)
    zip_path = tmp_path / "b.zip"
    assert pack_main(["--checkpoint", str(ckpt), "--out", str(zip_path), "--no_profile"]) == 0
    data = make_data_dir(tmp_path / "test", 3, 0.5)
    out = tmp_path / "eval"
    assert (
        evaluate_main(
            [
                "--model",
                f"a={ckpt}",
                "--model",
                str(zip_path),
                "--data_dir",
                str(data),
                "--out_dir",
                str(out),
                "--metrics",
                "sisdr",
                "--nj",
                "1",
                "--profile_seconds",
                "0.25",
            ]
        )
        == 0
    )
    md = (out / "RESULTS.md").read_text()
    assert "## test (3 utterances)" in md and "| noisy |" in md and "| a | model |" in md and "| b | model |" in md
    # the same pairs as two folders paired by file name
    noisy, clean = tmp_path / "noisy", tmp_path / "clean"
    noisy.mkdir()
    clean.mkdir()
    for i, f in enumerate(sorted((data / "wav").glob("*_noisy.wav"))):
        shutil.copy(f, noisy / f"u{i}.wav")
        shutil.copy(str(f).replace("_noisy", "_clean"), clean / f"u{i}.wav")
    out2 = tmp_path / "eval2"
    assert (
        evaluate_main(
            [
                "--model",
                f"a={ckpt}",
                "--noisy_dir",
                str(noisy),
                "--clean_dir",
                str(clean),
                "--out_dir",
                str(out2),
                "--metrics",
                "sisdr",
                "--nj",
                "1",
                "--profile_seconds",
                "0.25",
            ]
        )
        == 0
    )
    assert sf.info(str(out2 / "a" / "enhanced" / "noisy" / "wav" / "u0.wav")).frames == 8000
    assert evaluate_main(["--model", "x=missing.pt", "--data_dir", str(data), "--out_dir", str(out2)]) == 2
