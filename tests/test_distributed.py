"""torchrun with 2 CPU processes (gloo) gives the weights of one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import make_data_dir, write_config


def _train(tmp_path, cfg, out, nproc: int) -> subprocess.CompletedProcess:
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        if nproc > 1
        else [sys.executable]
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = launcher + [
        "-m",
        "sekd.bin.train",
        "--config",
        str(cfg),
        "--train_dir",
        str(tmp_path / "train"),
        "--valid_dir",
        str(tmp_path / "valid"),
        "--out_dir",
        str(out),
        "--progress",
        "off",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.timeout(600)
def test_two_gloo_processes_match_one(tmp_path):
    make_data_dir(tmp_path / "train", 8, 1.0, seed=1)
    make_data_dir(tmp_path / "valid", 3, 1.0, seed=2)
    # DPDCRN has no batch norm, so a rank's half batch gives the same gradients as its share of the whole.
    # SGD, not Adam: Adam's first steps are about lr * sign(gradient), which turns float noise in
    # near-zero gradients into lr-sized differences.
    cfg = write_config(
        tmp_path / "c.yaml",
        model={"name": "dpdcrn", "args": {"channels": 8, "num_blocks": 1}},
        data={"batch_size": 4, "segment": 0.5},
        optim={"name": "sgd", "lr": 0.05},
        train={"max_epochs": 2, "steps_per_epoch": 2, "num_threads": 1, "save_every_steps": 0},
    )
    single = _train(tmp_path, cfg, tmp_path / "single", 1)
    assert single.returncode == 0, single.stderr[-2000:]
    multi = _train(tmp_path, cfg, tmp_path / "ddp", 2)
    assert multi.returncode == 0, multi.stderr[-3000:]
    a = torch.load(tmp_path / "single" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "ddp" / "checkpoints" / "last.pt", weights_only=False)
    assert a["trainer"]["global_step"] == b["trainer"]["global_step"] == 4
    torch.manual_seed(0)
    from sekd.models import build_model

    init = build_model("dpdcrn", channels=8, num_blocks=1).state_dict()  # the trainer's seed-0 initialisation
    moved = torch.cat([(a["state_dict"][k] - init[k]).flatten() for k in init]).norm()
    apart = torch.cat([(a["state_dict"][k] - b["state_dict"][k]).flatten() for k in init]).norm()
    # Float32 sums in another order differ in the last bits; gradients that were summed instead of
    # averaged, or a rank that trained on the wrong items, would be as far apart as the steps themselves.
    assert moved > 0.05 and apart < 0.01 * moved, (float(moved), float(apart))
    ia = json.loads((tmp_path / "single" / "model_info.json").read_text())
    ib = json.loads((tmp_path / "ddp" / "model_info.json").read_text())
    for ha, hb in zip(ia["history"], ib["history"]):  # validation split over ranks, summed: the same metric
        assert ha["valid_sisnr"] == pytest.approx(hb["valid_sisnr"], abs=1e-3)
        assert ha["train_task"] == pytest.approx(hb["train_task"], abs=1e-3)
    log = (tmp_path / "ddp" / "train.log").read_text()
    assert "x 2 processes" in log and log.count("epoch 1 done") == 1  # rank 0 alone writes the log


@pytest.mark.timeout(600)
def test_two_gloo_processes_match_one_in_a_kd_run_with_adapters(tmp_path):
    """FitNets under torchrun: DDP wraps the one Distiller (student + KD adapters), so the adapters'
    gradients are averaged like the student's and both end where one process puts them."""
    make_data_dir(tmp_path / "train", 8, 1.0, seed=1)
    make_data_dir(tmp_path / "valid", 2, 1.0, seed=2)
    from sekd.models import build_model

    torch.manual_seed(3)
    teacher_args = {"channels": 16, "num_blocks": 1}
    teacher = build_model("dpdcrn", **teacher_args)
    torch.save(
        {"model_name": "dpdcrn", "model_args": teacher_args, "state_dict": teacher.state_dict()},
        tmp_path / "teacher.pt",
    )
    layers = ["encoder.0", "encoder.1"]
    cfg = write_config(
        tmp_path / "c.yaml",
        model={"name": "dpdcrn", "args": {"channels": 8, "num_blocks": 1}},
        data={"batch_size": 4, "segment": 0.5},
        optim={"name": "sgd", "lr": 0.05},
        train={"max_epochs": 1, "steps_per_epoch": 3, "num_threads": 1, "save_every_steps": 0},
        kd={
            "teacher": str(tmp_path / "teacher.pt"),
            "terms": [
                {
                    "name": "fitnet",
                    "weight": 5.0,
                    "args": {"student_layers": layers, "teacher_layers": layers, "student_layout": "BCTF"},
                }
            ],
        },
    )
    single = _train(tmp_path, cfg, tmp_path / "single", 1)
    assert single.returncode == 0, single.stderr[-2000:]
    multi = _train(tmp_path, cfg, tmp_path / "ddp", 2)
    assert multi.returncode == 0, multi.stderr[-3000:]
    a = torch.load(tmp_path / "single" / "checkpoints" / "last.pt", weights_only=False)["trainer"]["kd_terms"]
    b = torch.load(tmp_path / "ddp" / "checkpoints" / "last.pt", weights_only=False)["trainer"]["kd_terms"]
    assert sorted(a) == sorted(b) and any(".adapters." in k for k in a), sorted(a)
    from sekd.train.config import build_config
    from sekd.train.trainer import Trainer

    # the adapters' start: what the trainer's set-up pass makes (seeded), before any step
    built = Trainer(
        build_config([cfg]), str(tmp_path / "train"), str(tmp_path / "valid"), str(tmp_path / "x"), progress=False
    )
    init = built.kd_terms.state_dict()
    moved = sum(float((a[k] - init[k]).pow(2).sum()) for k in a) ** 0.5
    apart = sum(float((a[k] - b[k]).pow(2).sum()) for k in a) ** 0.5
    # adapter gradients left un-averaged (each rank its half batch) would be about as far apart as the steps
    assert moved > 1e-3 and apart < 0.01 * moved, (moved, apart)
    assert not (tmp_path / "x").exists()  # building a trainer writes nothing


def test_batch_size_must_split_over_processes(tmp_path, monkeypatch):
    from sekd.train.config import ConfigError, build_config
    from sekd.train.trainer import Trainer

    make_data_dir(tmp_path / "train", 4, 1.0, seed=1)
    make_data_dir(tmp_path / "valid", 1, 1.0, seed=2)
    cfg = build_config([write_config(tmp_path / "c.yaml", data={"batch_size": 3})])
    monkeypatch.setattr(
        "sekd.train.distributed.setup",
        lambda device: __import__("sekd.train.distributed", fromlist=["Context"]).Context(0, 2),
    )
    with pytest.raises(ConfigError, match="not a multiple of the 2 processes"):
        Trainer(cfg, str(tmp_path / "train"), str(tmp_path / "valid"), str(tmp_path / "out"))


def test_amp_is_a_no_op_on_cpu(tmp_path):
    from sekd.train.config import ConfigError, build_config
    from sekd.train.trainer import Trainer

    make_data_dir(tmp_path / "train", 4, 1.0, seed=1)
    make_data_dir(tmp_path / "valid", 1, 1.0, seed=2)
    cfg = build_config([write_config(tmp_path / "c.yaml", train={"amp": "bf16"})])
    trainer = Trainer(cfg, str(tmp_path / "train"), str(tmp_path / "valid"), str(tmp_path / "out"))
    assert not trainer.amp_enabled and trainer.dist.device.type == "cpu"
    cfg["train"]["amp"] = "int4"
    with pytest.raises(ConfigError, match="train.amp"):
        Trainer(cfg, str(tmp_path / "train"), str(tmp_path / "valid"), str(tmp_path / "out2"))
