"""The training loop: config overrides, exact resume after SIGKILL, distillation wiring."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import soundfile as sf
import torch

from sekd.train.config import ConfigError, build_config, parse_overrides

from conftest import PYTHON, make_data_dir, write_config


def test_overrides_and_unknown_keys(tmp_path):
    conf = write_config(tmp_path / "c.yaml")
    cfg = build_config([conf], ["--train.max_epochs", "7", "--optim.lr=1e-4", "--model.args.rnn_units", "24"])
    assert cfg["train"]["max_epochs"] == 7 and cfg["optim"]["lr"] == 1e-4
    assert cfg["model"]["args"]["rnn_units"] == 24 and cfg["model"]["args"]["channels"] == [4, 8, 8]
    with pytest.raises(ConfigError, match="unknown config key 'train.max_epoch'"):
        build_config([conf], ["--train.max_epoch", "3"])
    with pytest.raises(ConfigError, match="has no value"):
        parse_overrides(["--train.max_epochs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  max_epochs: [1\n")
    with pytest.raises(ConfigError, match=rf"{bad}:\d+: invalid YAML"):
        build_config([bad])


def _train(tmp_path, data, out, extra=(), **popen):
    cmd = [
        PYTHON,
        "-m",
        "sekd.bin.train",
        "--config",
        str(tmp_path / "c.yaml"),
        "--train_dir",
        str(data[0]),
        "--valid_dir",
        str(data[1]),
        "--out_dir",
        str(out),
        "--train.num_threads",
        "1",
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def test_sigkill_then_resume_gives_identical_weights(tmp_path):
    data = (make_data_dir(tmp_path / "train", 16, 1.0, seed=1), make_data_dir(tmp_path / "valid", 2, 1.0, seed=2))
    write_config(
        tmp_path / "c.yaml",
        model={
            "args": {
                "channels": [8, 16, 16, 32],
                "rnn_units": 32,
                "rnn_layers": 2,
                "win_len": 256,
                "hop": 128,
                "n_fft": 256,
            }
        },
        data={"segment": 1.0, "batch_size": 2},
        train={"max_epochs": 3, "save_every_steps": 2},
    )
    ref = _train(tmp_path, data, tmp_path / "ref")
    assert ref.wait(timeout=300) == 0, ref.stdout.read().decode()

    run = _train(tmp_path, data, tmp_path / "killed")
    log = tmp_path / "killed" / "train.log"
    deadline = time.time() + 300
    while time.time() < deadline:  # kill in the middle of epoch 2, after a mid-epoch checkpoint
        if log.exists() and "epoch 2 step 5/8" in log.read_text():
            run.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    assert run.wait(timeout=60) == -signal.SIGKILL
    assert not (tmp_path / "killed" / "model_info.json").exists(), "the run finished before it was killed"
    state = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=False)["trainer"]
    assert state["epoch"] == 1 and 0 < state["step_in_epoch"] < 8  # a mid-epoch checkpoint

    resumed = _train(tmp_path, data, tmp_path / "killed", ["--resume"])
    out = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, out
    assert "resumed from" in out
    for name in ("last.pt", "best.pt"):
        a = torch.load(tmp_path / "ref" / "checkpoints" / name, weights_only=False)
        b = torch.load(tmp_path / "killed" / "checkpoints" / name, weights_only=False)
        assert a["epoch"] == b["epoch"]
        for key, value in a["state_dict"].items():
            assert torch.equal(value, b["state_dict"][key]), f"{name}: {key} differs after resume"
    # the killed epoch's logged training loss is its whole mean, not the mean since the restart
    import json

    ref_hist = json.loads((tmp_path / "ref" / "model_info.json").read_text())["history"]
    res_hist = json.loads((tmp_path / "killed" / "model_info.json").read_text())["history"]
    assert [h["train_task"] for h in res_hist] == pytest.approx([h["train_task"] for h in ref_hist], rel=1e-6)


def test_checkpoint_is_self_describing(tmp_path, tiny_data):
    from sekd.train.checkpoint import load_model

    write_config(tmp_path / "c.yaml", train={"max_epochs": 1})
    proc = _train(tmp_path, tiny_data, tmp_path / "exp", ["--role", "teacher", "--train.seed", "5"])
    assert proc.wait(timeout=300) == 0, proc.stdout.read().decode()
    model, ckpt = load_model(tmp_path / "exp" / "checkpoints" / "best.pt")
    assert ckpt["model_name"] == "dccrn" and ckpt["seed"] == 5 and ckpt["role"] == "teacher"
    assert ckpt["config"]["train"]["max_epochs"] == 1 and "git_commit" in ckpt
    assert not model.training
    assert (tmp_path / "exp" / "model_info.json").exists() and (tmp_path / "exp" / "config.yaml").exists()
    assert any((tmp_path / "tensorboard" / "exp").iterdir())

    # The checkpoint alone enhances loose wav files: wavs of the same names and lengths in --out_dir.
    wavs = sorted((tiny_data[1] / "wav").glob("*_noisy.wav"))
    out = tmp_path / "enhanced"
    proc = subprocess.run(
        [
            PYTHON,
            "-m",
            "sekd.bin.enhance",
            "--checkpoint",
            str(tmp_path / "exp/checkpoints/best.pt"),
            "--out_dir",
            str(out),
            *map(str, wavs),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(w.name for w in wavs)
    for wav in wavs:
        assert sf.info(str(out / wav.name)).frames == sf.info(wav).frames


def test_distillation_trains_student_only(tmp_path, tiny_data):
    from sekd.train.trainer import Trainer

    write_config(tmp_path / "c.yaml", train={"max_epochs": 1})
    teacher = Trainer(build_config([tmp_path / "c.yaml"]), *map(str, tiny_data), str(tmp_path / "t"), role="teacher")
    teacher.run()
    cfg = build_config(
        [tmp_path / "c.yaml"],
        ["--kd.teacher", str(tmp_path / "t/checkpoints/best.pt"), "--kd.terms", "[{name: output, weight: 1.0}]"],
    )
    student = Trainer(cfg, *map(str, tiny_data), str(tmp_path / "s"), role="kd")
    assert not any(p.requires_grad for p in student.teacher.parameters())
    assert not student.teacher.training
    before = {k: v.clone() for k, v in student.teacher.state_dict().items()}
    noisy, clean = next(iter(torch.utils.data.DataLoader(student.train_set, batch_size=2)))
    loss, parts = student.compute_loss(noisy, clean)
    assert set(parts) == {"task", "kd_output"}
    loss.backward()
    assert all(p.grad is not None for p in student.model.parameters())
    student.run()
    after = student.teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics untouched too


def test_output_kd_term_values():
    from sekd.distill import KDContext, build_kd_term

    clean = torch.randn(2, 4000)
    teacher = clean + 0.1 * torch.randn(2, 4000)
    term = build_kd_term("output", domain="both")
    same = term(KDContext(clean, clean, teacher.clone().requires_grad_(), teacher))
    other = term(KDContext(clean, clean, clean.clone(), teacher))
    assert same.item() < other.item()  # matching the teacher scores better than matching the clean signal
    with pytest.raises(ValueError, match="domain"):
        build_kd_term("output", domain="mel")
    with pytest.raises(KeyError, match="unknown KD method"):
        build_kd_term("nope")


def test_kd_without_teacher_is_an_error(tmp_path, tiny_data):
    write_config(tmp_path / "c.yaml")
    proc = _train(tmp_path, tiny_data, tmp_path / "x", ["--kd.terms", "[{name: output}]"])
    out = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 1 and "kd.terms output need a teacher checkpoint" in out


def test_kd_adapters_train_with_the_student_and_resume(tmp_path, tiny_data, monkeypatch):
    """Adapters made at the first batch are in the optimizer, change during training, are clipped
    with the student by train.grad_clip, are saved in last.pt (restored on resume) and are not
    part of the student's best.pt."""
    from sekd.train import trainer as trainer_module
    from sekd.train.trainer import Trainer

    clipped = []
    clip = trainer_module.nn.utils.clip_grad_norm_
    monkeypatch.setattr(
        trainer_module.nn.utils,
        "clip_grad_norm_",
        lambda params, max_norm: clipped.append({id(p) for p in params}) or clip(params, max_norm),
    )
    write_config(tmp_path / "c.yaml", train={"max_epochs": 1, "grad_clip": 5.0})
    Trainer(build_config([tmp_path / "c.yaml"]), *map(str, tiny_data), str(tmp_path / "t"), role="teacher").run()
    terms = (
        "[{name: fitnet, weight: 1.0, args: {student_layers: [encoder.1, encoder.2], "
        "teacher_layers: [encoder.1, encoder.2]}}]"
    )
    overrides = [
        "--kd.teacher",
        str(tmp_path / "t/checkpoints/best.pt"),
        "--kd.terms",
        terms,
        "--model.args.channels",
        "[2, 4, 4]",
    ]  # a narrower student: the adapters map 4 -> 8 channels
    student = Trainer(build_config([tmp_path / "c.yaml"], overrides), *map(str, tiny_data), str(tmp_path / "s"))
    adapters = dict(student.kd_terms.named_parameters())
    assert adapters and adapters["0.adapters.1.weight"].shape[:2] == (8, 4)
    in_optimizer = {id(p) for group in student.optimizer.param_groups for p in group["params"]}
    assert all(id(p) in in_optimizer for p in adapters.values())
    before = {k: v.detach().clone() for k, v in adapters.items()}
    clipped.clear()
    student.run()
    assert all(not torch.equal(before[k], v) for k, v in student.kd_terms.named_parameters())
    assert clipped and all(clipped[0] == s for s in clipped)
    assert {id(p) for p in adapters.values()} | {id(p) for p in student.model.parameters()} == clipped[0]
    best = torch.load(tmp_path / "s/checkpoints/best.pt", weights_only=False)
    assert not any("adapters" in k for k in best["state_dict"])
    resumed = Trainer(build_config([tmp_path / "c.yaml"], overrides), *map(str, tiny_data), str(tmp_path / "s"))
    assert resumed.resume()
    for k, v in resumed.kd_terms.named_parameters():
        torch.testing.assert_close(v, dict(student.kd_terms.named_parameters())[k])


def test_kd_config_errors_name_the_term(tmp_path, tiny_data):
    write_config(tmp_path / "c.yaml", train={"max_epochs": 1})
    from sekd.train.trainer import Trainer

    Trainer(build_config([tmp_path / "c.yaml"]), *map(str, tiny_data), str(tmp_path / "t"), role="teacher").run()
    teacher = str(tmp_path / "t/checkpoints/best.pt")
    bad_path = "[{name: at, args: {student_layers: [encoder.9], teacher_layers: [encoder.1]}}]"
    proc = _train(tmp_path, tiny_data, tmp_path / "x", ["--kd.teacher", teacher, "--kd.terms", bad_path])
    out = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 1 and "do not fit student dccrn" in out and "no module named 'encoder.9'" in out
    bad_arg = "[{name: at, args: {student_layers: [encoder.1], teacher_layers: [encoder.1], p: 2, q: 1}}]"
    proc = _train(tmp_path, tiny_data, tmp_path / "y", ["--kd.teacher", teacher, "--kd.terms", bad_arg])
    out = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 1 and "kd.terms[0] (at)" in out and "'q'" in out
    assert not (tmp_path / "x" / "checkpoints").exists()


def test_kd_grad_ratio_suggests_weights(tmp_path, tiny_data, monkeypatch, capsys):
    from sekd.bin.kd_grad_ratio import main
    from sekd.train.trainer import Trainer

    (tmp_path / "conf").mkdir()
    write_config(tmp_path / "conf" / "teacher.yaml", train={"max_epochs": 1})
    write_config(tmp_path / "conf" / "student.yaml", model={"args": {"channels": [2, 4, 4]}})
    Trainer(
        build_config([tmp_path / "conf" / "teacher.yaml"]),
        *map(str, tiny_data),
        str(tmp_path / "exp" / "teacher"),
        role="teacher",
    ).run()
    (tmp_path / "conf" / "kd.yaml").write_text(
        "kd:\n  terms:\n    - {name: at, weight: 1000.0, args: {student_layers: [encoder.1], "
        "teacher_layers: [encoder.1]}}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "--kd_config",
                "conf/kd.yaml",
                "--train_dir",
                str(tiny_data[0]),
                "--valid_dir",
                str(tiny_data[1]),
                "--warm_steps",
                "2",
                "--batches",
                "1",
                "--target",
                "0.1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    ratio = float(out.split("gradient ratio at weight 1: ")[1].split(";")[0])
    suggested = float(out.split("weight for 0.1: ")[1].split()[0])
    assert ratio > 0 and suggested == pytest.approx(0.1 / ratio, rel=1e-2)


def test_output_kd_is_sign_aware_like_the_task_loss():
    """Plain SI-SNR scores an inverted teacher output as well as the output itself, which fights the
    sign-aware task loss (a 10 % mini student's validation SI-SNR fell to 0.2-7 dB with it);
    the term is sign-aware by default, ``sign_aware: false`` keeps the plain one."""
    from sekd.distill import KDContext, build_kd_term

    torch.manual_seed(0)
    teacher = torch.randn(2, 4000)
    inverted = KDContext(teacher, teacher, -teacher.clone(), teacher)
    assert build_kd_term("output").forward(inverted).item() > 0  # no better than silence
    assert build_kd_term("output", sign_aware=False).forward(inverted).item() < -50  # "perfect"
    same = KDContext(teacher, teacher, teacher.clone(), teacher)
    assert build_kd_term("output").forward(same).item() < -50


def test_onecycle_steps_per_batch_and_manner_loss_trains(tmp_path, tiny_data):
    """scheduler onecycle (the official MANNER schedule) moves the LR every optimizer step, over
    max_epochs x batches per epoch; the noise-weighted l1_mrstft gets the noisy input from the loop."""
    from sekd.train.trainer import Trainer

    cfg_file = write_config(
        tmp_path / "c.yaml",
        train={"max_epochs": 2, "num_threads": 1},
        optim={"name": "adam", "lr": 1e-3},
        scheduler={"name": "onecycle"},
        loss={"name": "l1_mrstft"},
    )
    trainer = Trainer(build_config([cfg_file]), tiny_data[0], tiny_data[1], tmp_path / "exp")
    assert isinstance(trainer.scheduler, torch.optim.lr_scheduler.OneCycleLR)
    trainer.run()
    steps = 2 * (8 // 2)  # 8 utterances in batches of 2, two epochs
    reference = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
    ref_sched = torch.optim.lr_scheduler.OneCycleLR(reference, max_lr=1e-3, total_steps=steps, pct_start=0.3)
    lrs = []
    for _ in range(steps):
        reference.step()
        ref_sched.step()
        lrs.append(reference.param_groups[0]["lr"])
    assert trainer.global_step == steps
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(lrs[-1], rel=1e-9)
    assert max(lrs) > 10 * lrs[-1]  # it did rise and fall within the run, not once per epoch


def test_best_checkpoint_by_validation_pesq(tmp_path, tiny_data):
    """train.best_metric: pesq (the official MANNER training's choice): each epoch logs PESQ-WB beside
    SI-SNR, best.pt is the epoch of the highest PESQ, model_info records both."""
    import json

    from sekd.train.trainer import Trainer

    write_config(
        tmp_path / "c.yaml",
        train={"max_epochs": 3, "num_threads": 1, "best_metric": "pesq"},
        optim={"name": "adam", "lr": 3e-3},
    )
    trainer = Trainer(build_config([tmp_path / "c.yaml"]), tiny_data[0], tiny_data[1], tmp_path / "exp")
    info = trainer.run()
    pesq = [r["valid_pesq"] for r in info["history"]]
    assert all(1.0 <= p <= 4.7 for p in pesq) and all("valid_sisnr" in r for r in info["history"])
    best = max(range(3), key=lambda i: pesq[i])
    assert info["best_valid_pesq"] == pytest.approx(pesq[best]) and info["best_epoch"] == best + 1
    assert info["best_valid_sisnr"] == pytest.approx(info["history"][best]["valid_sisnr"])
    assert torch.load(tmp_path / "exp" / "checkpoints" / "best.pt", weights_only=True)["epoch"] == best + 1
    assert json.loads((tmp_path / "exp" / "model_info.json").read_text())["best_metric"] == "pesq"
    assert "PESQ-WB" in (tmp_path / "exp" / "train.log").read_text()
    with pytest.raises(ConfigError, match="best_metric"):
        build_config([tmp_path / "c.yaml"], ["--train.best_metric", "stoi"])
