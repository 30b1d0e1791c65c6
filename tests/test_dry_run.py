"""``--dry_run`` over every recipe config: the real trainer (data, model, teacher, KD terms, head) runs
one batch forward and backward and writes nothing; a broken config fails before any training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, make_data_dir, make_sv_data_dir

EGS = ROOT / "egs"
CONFS = sorted(p for pattern in ("*/conf/*.yaml", "*/conf/tuning/*.yaml") for p in EGS.glob(pattern))
KD_CONFS = sorted(p for pattern in ("*/conf/kd/*.yaml", "*/conf/ablation/*.yaml") for p in EGS.glob(pattern))
OVERLAYS = sorted(
    p
    for p in EGS.glob("*/conf/*/*.yaml")
    if p.parent.name not in ("kd", "ablation", "tuning") and p.name != "common.yaml"
)
# Small batches of short crops on one thread: the dry run checks that everything fits, not speed.
SMALL = ["--data.batch_size", "2", "--data.segment", "0.5", "--data.num_workers", "0", "--train.num_threads", "1"]


def _ids(p: Path) -> str:
    return str(p.relative_to(EGS))


def _data(root: Path, cfg: dict) -> tuple[Path, Path]:
    """Training and validation dirs at the config's rate and channel count, with the noise list of
    on-the-fly mixing where the config names one (relative to the training dir, as in the recipes)."""
    from sekd.models import MODELS

    rate, channels = int(cfg["data"]["sample_rate"]), int(cfg["data"]["channels"] or 1)
    if getattr(MODELS.get(cfg["model"]["name"]), "task", "enh") == "sv":
        return (
            make_sv_data_dir(root / "train", 3, 2, 1.0, rate, seed=1),
            make_sv_data_dir(root / "valid", 2, 2, 1.0, rate, seed=2),
        )
    train = make_data_dir(root / "train", 4, 1.0, rate, seed=1, channels=channels)
    valid = make_data_dir(root / "valid", 2, 1.0, rate, seed=2, channels=channels)
    if cfg["data"].get("noise_scp"):
        scp = (train / cfg["data"]["noise_scp"]).resolve()
        scp.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(3)
        lines = []
        for i in range(2):
            wav = scp.parent / f"noise{i}.wav"
            sf.write(wav, (0.1 * rng.standard_normal(rate)).astype(np.float32), rate)
            lines.append(f"noise{i} {wav}\n")
        scp.write_text("".join(lines))
    return train, valid


def dry_run(root: Path, files: list[Path], teacher: Path | None = None) -> dict:
    from sekd.train.config import build_config
    from sekd.train.trainer import Trainer

    cfg = build_config(files, SMALL)
    if teacher is not None:
        cfg["kd"]["teacher"] = str(teacher)
    train, valid = _data(root, cfg)
    out = root / "out"
    step = Trainer(cfg, str(train), str(valid), str(out), progress=False).dry_run()
    assert not out.exists(), "a dry run wrote files"
    assert math.isfinite(step["loss"]) and not step["no_grad"], step
    return step


def random_teacher(root: Path, config: Path) -> Path:
    """A checkpoint of the teacher a KD config names, as the trainer saves it (head included for SV),
    with its initial weights: the dry run checks fit, not quality."""
    from sekd.train.config import build_config
    from sekd.train.trainer import Trainer

    cfg = build_config([config], SMALL)
    train, valid = _data(root, cfg)
    trainer = Trainer(cfg, str(train), str(valid), str(root / "teacher"), progress=False)
    trainer.save("best.pt", with_trainer=False)
    return trainer.ckpt_dir / "best.pt"


@pytest.mark.parametrize("conf", CONFS, ids=_ids)
def test_config_dry_run(conf, tmp_path):
    """Every recipe config (teachers, students, presets) builds and trains one batch."""
    dry_run(tmp_path, [conf])


@pytest.mark.parametrize("overlay", OVERLAYS, ids=_ids)
def test_conf_tag_overlay_dry_run(overlay, tmp_path):
    """--conf_tag <tag>: conf/<tag>/common.yaml and conf/<tag>/<name>.yaml layered on conf/<name>.yaml
    (as lib.sh's tag_opts) build and train one batch."""
    base = overlay.parents[1] / overlay.name
    assert base.is_file(), f"{overlay} overlays {base}, which does not exist"
    common = overlay.parent / "common.yaml"
    dry_run(tmp_path, [base, *([common] if common.is_file() else []), overlay])


@pytest.mark.parametrize("conf", KD_CONFS, ids=_ids)
def test_kd_config_dry_run(conf, tmp_path):
    """A KD config with the student and teacher it names: every tapped module exists, the layouts fit,
    every term gives a finite value, and the gradient reaches the student and every adapter."""
    from sekd.train.config import load_yaml

    recipe = conf.parents[2]
    kd = load_yaml(conf)["kd"]
    student = recipe / (kd.get("student_config") or "conf/student.yaml")
    teacher = recipe / (kd.get("teacher_config") or "conf/teacher.yaml")
    needs_teacher = kd.get("teacher", True) is not False
    step = dry_run(tmp_path, [student, conf], random_teacher(tmp_path / "t", teacher) if needs_teacher else None)
    names = [t["name"] for t in kd["terms"]]
    assert all(math.isfinite(step[f"kd_{n}"]) for n in names), step


def test_dry_run_entrypoint_names_a_broken_config_and_writes_nothing(tmp_path, capsys):
    from sekd.bin import distill

    student = EGS / "mini" / "conf" / "student.yaml"
    teacher = random_teacher(tmp_path / "t", EGS / "mini" / "conf" / "teacher.yaml")
    train, valid = tmp_path / "t" / "train", tmp_path / "t" / "valid"
    args = [
        "--config",
        str(student),
        "--train_dir",
        str(train),
        "--valid_dir",
        str(valid),
        "--teacher",
        str(teacher),
        "--dry_run",
        "--progress",
        "off",
        *SMALL,
    ]
    good = tmp_path / "good.yaml"
    good.write_text(
        "kd:\n  terms: [{name: fitnet, weight: 1.0, args: {student_layers: [encoder.1], "
        "teacher_layers: [encoder.1]}}]\n"
    )
    assert distill.main(args + ["--kd_config", str(good), "--out_dir", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "one batch: loss " in out and "kd_fitnet " in out and not (tmp_path / "a").exists()
    broken = tmp_path / "broken.yaml"  # a layer the student does not have
    broken.write_text(
        "kd:\n  terms: [{name: fitnet, weight: 1.0, args: {student_layers: [encoder.9], "
        "teacher_layers: [encoder.1]}}]\n"
    )
    assert distill.main(args + ["--kd_config", str(broken), "--out_dir", str(tmp_path / "b")]) == 1
    assert "encoder.9" in capsys.readouterr().err and not (tmp_path / "b").exists()
