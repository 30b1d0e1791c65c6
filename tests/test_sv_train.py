"""Speaker verification in the one training loop: AAM head, EER validation, checkpoints with the head,
exact resume, the SV KD terms (logit_kd, embedding_kd, imlkd), embedding extraction through kaldiio."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from sekd.distill import KDContext, build_kd_term
from sekd.distill.imlkd import multilevel_losses, segment_plan
from sekd.distill.taps import FeatureTaps
from sekd.models import build_model
from sekd.sv.aam import AAMSoftmax

from conftest import TINY_ECAPA, make_sv_data_dir


@pytest.fixture(scope="module")
def sv_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sv")
    return (make_sv_data_dir(root / "train", 4, 4, 1.0, seed=1), make_sv_data_dir(root / "valid", 4, 2, 1.0, seed=2))


def _config(path, **sections):
    cfg = {
        "model": copy.deepcopy(TINY_ECAPA),
        "data": {"segment": 0.5, "batch_size": 4},
        "loss": {"name": "aam", "margin": 0.2, "scale": 30},
        "scheduler": {"name": "none"},
        "train": {"max_epochs": 2, "save_every_steps": 2, "log_every_steps": 2, "num_threads": 1},
    }
    for k, v in sections.items():
        cfg.setdefault(k, {}).update(v)
    path.write_text(yaml.safe_dump(cfg))
    return path


def _train(conf, data, out, *extra, kd=None, teacher=None):
    from sekd.bin import distill, train

    args = [
        "--config",
        str(conf),
        "--train_dir",
        str(data[0]),
        "--valid_dir",
        str(data[1]),
        "--out_dir",
        str(out),
        "--progress",
        "off",
        *extra,
    ]
    if kd:
        return distill.main(args + ["--kd_config", str(kd), "--teacher", str(teacher)])
    return train.main(args)


@pytest.fixture(scope="module")
def teacher(sv_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher")
    conf = _config(root / "t.yaml", model={"args": {**TINY_ECAPA["args"], "channels": 24}})
    assert _train(conf, sv_data, root / "teacher", "--role", "teacher") == 0
    return root / "teacher"


def test_crop_slots_cycle_each_utterances_crops(sv_data):
    from sekd.data import SpeakerCropDataset

    def crops(ds, epoch):
        ds.set_epoch(epoch)
        return [(ds[i][0], int(ds[i][2])) for i in range(len(ds))]

    fresh = SpeakerCropDataset(sv_data[0], 0.25, seed=3)  # 1 s utterances, 0.25 s crops
    n = len(fresh)
    e0, e1 = crops(fresh, 0), crops(fresh, 1)
    assert [i for _, i in e0] == list(range(n)) and [i for _, i in e1] == list(range(n, 2 * n))
    assert sum(not torch.equal(a, b) for (a, _), (b, _) in zip(e0, e1)) >= n - 1  # a new crop every epoch
    two = SpeakerCropDataset(sv_data[0], 0.25, seed=3, crop_slots=2)
    s0, s1, s2 = crops(two, 0), crops(two, 1), crops(two, 2)
    assert all(torch.equal(a, b) and i == j for (a, i), (b, j) in zip(s0, s2))  # epoch 2 reuses slot 0
    assert all(torch.equal(a, b) and i == j for (a, i), (b, j) in zip(s1, e1))  # slot 1 = fresh epoch 1
    assert {i for _, i in s0}.isdisjoint(i for _, i in s1)  # two crops per utterance, two ids
    one = SpeakerCropDataset(sv_data[0], 0.25, seed=3, crop_slots=1)
    assert [i for _, i in crops(one, 5)] == list(range(n))
    with pytest.raises(ValueError, match="crop_slots"):
        SpeakerCropDataset(sv_data[0], 0.25, crop_slots=-1)


def test_sv_training_writes_a_checkpoint_with_eer_and_its_head(teacher):
    from sekd.train.checkpoint import load_model

    model, ckpt = load_model(teacher / "checkpoints" / "best.pt")
    assert type(model).__name__ == "ECAPATDNN" and ckpt["task"] == "sv" and ckpt["role"] == "teacher"
    assert math.isfinite(ckpt["best_valid_eer"]) and 0 <= ckpt["best_valid_eer"] <= 100
    head = ckpt["head"]
    assert head["name"] == "aam" and head["speakers"] == ["spk00", "spk01", "spk02", "spk03"]
    assert head["args"] == {"embed_dim": 12, "num_classes": 4, "margin": 0.2, "scale": 30}
    assert head["state_dict"]["weight"].shape == (4, 12)
    info = json.loads((teacher / "model_info.json").read_text())
    assert [h["epoch"] for h in info["history"]] == [1, 2]
    assert all(math.isfinite(h["valid_eer"]) and "train_acc" in h for h in info["history"])
    assert info["best_valid_eer"] == min(h["valid_eer"] for h in info["history"])
    assert "valid EER" in (teacher / "train.log").read_text()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(teacher.parent / "tensorboard" / "teacher"))
    events.Reload()
    assert {"valid/eer", "train/acc", "train/task"} <= set(events.Tags()["scalars"])


def test_sv_resume_is_exact_and_restores_the_head(sv_data, tmp_path):
    conf = _config(tmp_path / "c.yaml")
    assert _train(conf, sv_data, tmp_path / "ref") == 0
    assert _train(conf, sv_data, tmp_path / "cut", "--train.max_epochs", "1") == 0
    assert _train(conf, sv_data, tmp_path / "cut", "--resume") == 0
    a = torch.load(tmp_path / "ref" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=False)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert torch.equal(a["head"]["state_dict"]["weight"], b["head"]["state_dict"]["weight"])
    assert "resumed from" in (tmp_path / "cut" / "train.log").read_text()


def test_sv_model_needs_the_aam_loss(sv_data, tmp_path, capsys):
    conf = _config(tmp_path / "c.yaml", loss={"name": "sisnr"})
    assert _train(conf, sv_data, tmp_path / "x") == 1
    assert "trains with loss.name aam" in capsys.readouterr().err


def test_distillation_with_the_three_sv_terms(sv_data, teacher, tmp_path):
    conf = _config(tmp_path / "s.yaml")
    kd = tmp_path / "kd.yaml"
    kd.write_text(
        yaml.safe_dump(
            {
                "data": {"crop_slots": 1},
                "kd": {
                    "terms": [
                        {"name": "logit_kd", "weight": 0.5, "args": {"temperature": 2.0}},
                        {"name": "embedding_kd", "weight": 1.0},  # 12 -> 12 dimensions: no adapter
                        {
                            "name": "imlkd",
                            "weight": 1.0,
                            "args": {"durations": ["full", 0.25], "steps": 2, "cache": True},
                        },
                    ]
                },
            }
        )
    )
    before = torch.load(teacher / "checkpoints" / "best.pt", weights_only=False)["state_dict"]
    assert _train(conf, sv_data, tmp_path / "kd", kd=kd, teacher=teacher / "checkpoints" / "best.pt") == 0
    after = torch.load(teacher / "checkpoints" / "best.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(before[k], after[k]) for k in before)
    info = json.loads((tmp_path / "kd" / "model_info.json").read_text())
    first, second = info["history"]
    for part in ("train_kd_logit_kd", "train_kd_embedding_kd", "train_kd_imlkd", "kd_seconds"):
        assert math.isfinite(first[part]), part
    # 16 crops, one slot: integrated gradients once per crop (2 of them while building the adapters), then cached
    assert first["kd_imlkd_ig_crops"] == second["kd_imlkd_ig_crops"] == 16 == second["kd_imlkd_cache_size"]
    assert second["kd_imlkd_cache_hits"] - first["kd_imlkd_cache_hits"] == 16
    assert {"train_kd_imlkd_instance", "train_kd_imlkd_class", "train_kd_imlkd_batch"} <= set(first)  # its levels
    assert "KD " in (tmp_path / "kd" / "train.log").read_text()


# --- the KD terms on their own -------------------------------------------------------------------


def _pair():
    torch.manual_seed(0)
    teacher = build_model(TINY_ECAPA["name"], **{**TINY_ECAPA["args"], "channels": 24}).eval()
    student = build_model(TINY_ECAPA["name"], **{**TINY_ECAPA["args"], "embed_dim": 8}).train()
    for p in teacher.parameters():
        p.requires_grad_(False)
    head = AAMSoftmax(12, 3).eval()
    for p in head.parameters():
        p.requires_grad_(False)
    return teacher, student, head


def _ctx(term, teacher, student, head, wav, labels, crop_ids=None):
    with FeatureTaps(student, term.student_taps()) as taps:
        emb = student(wav)
    with torch.no_grad():
        t_emb = teacher(wav)
    return KDContext(
        wav,
        None,
        emb,
        t_emb,
        taps.features,
        {},
        labels=labels,
        teacher_model=teacher,
        student_model=student,
        teacher_head=head,
        teacher_logits=head.logits(t_emb),
        crop_ids=crop_ids,
    )


@pytest.mark.parametrize("space", ["embedding", "frames"])
def test_imlkd_gradients_reach_the_student_and_never_the_teacher(space):
    teacher, student, head = _pair()
    term = build_kd_term("imlkd", durations=["full", 0.25, 0.125], steps=3, max_segments=3, space=space)
    wav, labels = 0.1 * torch.randn(4, 1, 8000), torch.tensor([0, 1, 2, 0])
    ctx = _ctx(term, teacher, student, head, wav, labels)
    running = student.pool_bn.running_mean.clone()
    loss = term(ctx)
    assert loss.dim() == 0 and torch.isfinite(loss) and loss > 0
    assert set(term.last_parts) == {"instance", "class", "batch"}
    loss.backward()
    # embedding: every student layer (the segments go through its pooling and embedding layers again);
    # frames: those upstream of the tapped MFA output, and the predictor
    names = ("layer1", "layer2", "layer4", "mfa") + (
        ("pooling", "pool_bn", "embedding") if space == "embedding" else ()
    )
    for name in names:
        grads = [p.grad for p in student.get_submodule(name).parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), name
    if space == "frames":
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in term.parameters())  # the predictor
    else:  # 8-d student, 12-d teacher embeddings: an adapter; the segment pass left the BN running stats alone
        assert term.predictor["adapter"].weight.grad is not None
        assert torch.equal(running, student.pool_bn.running_mean)
    assert all(p.grad is None for p in teacher.parameters()) and all(p.grad is None for p in head.parameters())
    assert term.stats()["ig_crops"] == 4 and term.stats()["cache_size"] == 0


def test_imlkd_cache_needs_recurring_crops_and_skips_the_teacher():
    teacher, student, head = _pair()
    term = build_kd_term("imlkd", durations=["full", 0.25], steps=2, cache=True, target="embedding")
    wav, labels = 0.1 * torch.randn(3, 1, 8000), torch.tensor([0, 1, 1])
    with pytest.raises(ValueError, match="crop_slots"):
        term(_ctx(term, teacher, student, head, wav, labels))
    ids = torch.tensor([5, 6, 7])
    first = term(_ctx(term, teacher, student, head, wav, labels, ids))
    seconds = term.stats()["ig_seconds"]
    again = term(_ctx(term, teacher, student, head, wav, labels, ids))
    assert torch.allclose(first, again) and term.stats()["ig_seconds"] == seconds
    assert term.stats() | {"ig_seconds": 0} == {"ig_seconds": 0, "ig_crops": 3, "cache_hits": 3, "cache_size": 3}
    # the cached targets are the teacher's: recomputing them gives the same values
    fresh = term.teacher_targets(teacher, None, wav, labels)
    assert torch.allclose(torch.stack([term._cache[i] for i in (5, 6, 7)]), fresh, atol=1e-6)


def test_imlkd_segments_and_levels():
    # 2 s at 16 kHz: the crop, two 1 s halves, four 0.5 s quarters (capped at max_segments = 4)
    assert segment_plan(32000, ["full", 1.0, 0.5, 0.25], 16000, 4) == [
        (32000, [0]),
        (16000, [0, 16000]),
        (8000, [0, 8000, 16000, 24000]),
        (4000, [0, 9333, 18667, 28000]),
    ]
    assert segment_plan(8000, ["full", 1.0], 16000, 4) == [(8000, [0])]  # longer than the crop: the crop
    r = torch.randn(6, 5)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    zero = multilevel_losses(3 * r, r, labels, 0.1)  # scale-free: every level vanishes on the targets
    assert all(v.abs() < 1e-6 for v in zero.values())
    other = multilevel_losses(torch.randn(6, 5), r, labels, 0.1)
    assert all(v > 0 for v in other.values())
    assert multilevel_losses(torch.randn(3, 5), r[:3], torch.zeros(3, dtype=torch.long), 0.1)["class"] == 0


def test_logit_kd_is_zero_on_the_teachers_logits_and_hinton_otherwise():
    term = build_kd_term("logit_kd", temperature=2.0)
    t = torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.0, 5.0]])
    ctx = KDContext(None, None, None, None, student_logits=t.clone(), teacher_logits=t)
    assert term(ctx).abs() < 1e-7
    s = torch.tensor([[0.0, 1.0, 3.0], [1.0, 1.0, 1.0]], requires_grad=True)
    value = term(KDContext(None, None, None, None, student_logits=s, teacher_logits=t))
    p, q = F.softmax(t / 2, -1), F.softmax(s.detach() / 2, -1)
    expected = 4 * (p * (p.log() - q.log())).sum(-1).mean()
    assert torch.allclose(value, expected)
    value.backward()
    assert s.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="teacher's speaker logits"):
        term(KDContext(None, None, None, None, student_logits=s, teacher_logits=None))


def test_embedding_kd_known_values_and_adapter():
    e_t = torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    e_s = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    cos = build_kd_term("embedding_kd")
    assert torch.allclose(cos(KDContext(None, None, e_s, e_t)), torch.tensor(0.5))  # (1 - 0 + 1 - 1) / 2
    mse = build_kd_term("embedding_kd", distance="mse")
    assert torch.allclose(mse(KDContext(None, None, e_s, e_t)), torch.tensor(1.0))  # every coordinate off by 1
    wide = build_kd_term("embedding_kd")  # 3 -> 2 dimensions: a linear adapter, trained with the student
    s = torch.randn(2, 3, requires_grad=True)
    wide(KDContext(None, None, s, e_t)).backward()
    assert s.grad is not None and wide.adapters["linear"].weight.grad is not None
    with pytest.raises(ValueError, match="adapter: never"):
        build_kd_term("embedding_kd", adapter="never")(KDContext(None, None, s, e_t))


# --- extraction and scoring ------------------------------------------------------------------------


def test_embedding_extraction_round_trip_through_kaldiio(teacher, sv_data, tmp_path):
    import kaldiio
    import soundfile as sf

    from sekd.bin import extract_embeddings, score_sv
    from sekd.train.checkpoint import load_model

    out = tmp_path / "emb"
    ckpt = teacher / "checkpoints" / "best.pt"
    assert (
        extract_embeddings.main(["--checkpoint", str(ckpt), "--data_dir", str(sv_data[1]), "--out_dir", str(out)]) == 0
    )
    back = dict(kaldiio.load_scp(str(out / "embeddings.scp")))
    wavs = dict(line.split() for line in (sv_data[1] / "wav.scp").read_text().splitlines())
    assert sorted(back) == sorted(wavs) and float((out / "rtf").read_text()) > 0
    model, _ = load_model(ckpt)
    for key, path in wavs.items():
        with torch.no_grad():
            direct = model(torch.tensor(sf.read(path, dtype="float32")[0])[None])[0].numpy()
        np.testing.assert_allclose(back[key], direct, rtol=1e-5, atol=1e-6)
    assert not list(out.glob(".*tmp*"))  # nothing half-written left behind
    # cosine scoring from the scp: the EER the trainer validated with
    assert (
        score_sv.main(
            [
                "--trials",
                str(sv_data[1] / "trials"),
                "--embeddings",
                str(out / "embeddings.scp"),
                "--out_dir",
                str(tmp_path / "scoring"),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "scoring" / "result.json").read_text())
    best = torch.load(ckpt, weights_only=False)["best_valid_eer"]
    assert result["metrics"]["eer"]["mean"] == pytest.approx(best, abs=1e-6)
    assert result["scoring"] == {"method": "cosine"} and (tmp_path / "scoring" / "scores").exists()
    # AS-norm against the training speakers' mean embeddings
    assert (
        extract_embeddings.main(
            ["--checkpoint", str(ckpt), "--data_dir", str(sv_data[0]), "--out_dir", str(tmp_path / "cohort")]
        )
        == 0
    )
    assert (
        score_sv.main(
            [
                "--trials",
                str(sv_data[1] / "trials"),
                "--embeddings",
                str(out / "embeddings.scp"),
                "--cohort",
                str(tmp_path / "cohort" / "embeddings.scp"),
                "--cohort_utt2spk",
                str(sv_data[0] / "utt2spk"),
                "--top_n",
                "2",
                "--out_dir",
                str(tmp_path / "asnorm"),
            ]
        )
        == 0
    )
    asnorm = json.loads((tmp_path / "asnorm" / "result.json").read_text())
    assert asnorm["scoring"] == {"method": "asnorm", "top_n": 2, "cohort": 4, "subtract_mean": False}


def test_scoring_names_a_missing_embedding(teacher, sv_data, tmp_path, capsys):
    from sekd.bin import extract_embeddings, score_sv

    assert (
        extract_embeddings.main(
            [
                "--checkpoint",
                str(teacher / "checkpoints" / "best.pt"),
                "--data_dir",
                str(sv_data[1]),
                "--out_dir",
                str(tmp_path / "e"),
            ]
        )
        == 0
    )
    trials = tmp_path / "trials"
    trials.write_text("spk00-u00 spk01-u00 nontarget\nghost spk00-u01 target\n")
    assert (
        score_sv.main(
            [
                "--trials",
                str(trials),
                "--embeddings",
                str(tmp_path / "e" / "embeddings.scp"),
                "--out_dir",
                str(tmp_path / "s"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "embeddings.scp: no embedding for 1 enrollment utterance(s)" in err and "'ghost'" in err
    assert not (tmp_path / "s").exists()
