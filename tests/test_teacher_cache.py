"""Offline KD (kd.cache_teacher): fixed crops with ids, and the cached teacher giving the online
loss and gradients (issue 15 item 5)."""

from __future__ import annotations

import pytest
import torch

from sekd.train.config import ConfigError, build_config

from conftest import TINY_MODEL, write_config


def test_crop_slots_fix_the_crops_and_name_them(tmp_path, tiny_data):
    from sekd.data import CropDataset

    free = CropDataset(tiny_data[0], 0.5, seed=3)
    slots = CropDataset(tiny_data[0], 0.5, seed=3, crop_slots=2)
    assert len(free[0]) == 2  # no ids without slots: the batches are those of before
    items = {}
    for epoch in range(4):
        free.set_epoch(epoch)
        slots.set_epoch(epoch)
        items[epoch] = slots[5]
        assert torch.equal(free[5][0], items[epoch][0]) == (epoch < 2)  # slot e = epoch e for e < K
    assert torch.equal(items[0][0], items[2][0]) and torch.equal(items[1][1], items[3][1])
    assert not torch.equal(items[0][0], items[1][0])
    assert [int(items[e][2]) for e in range(4)] == [5, 8 + 5, 5, 8 + 5]  # slot * len + index
    with pytest.raises(ValueError, match="crop_slots"):
        CropDataset(tiny_data[0], 0.5, crop_slots=-1)


def _teacher(tmp_path):
    from sekd.models import build_model
    from sekd.train.checkpoint import save_atomic

    torch.manual_seed(11)
    model = build_model(TINY_MODEL["name"], **TINY_MODEL["args"])
    path = tmp_path / "teacher.pt"
    save_atomic(
        {
            "model_name": TINY_MODEL["name"],
            "model_args": TINY_MODEL["args"],
            "state_dict": model.state_dict(),
            "config": {"data": {"sample_rate": 16000}},
            "num_params": 1,
            "role": "teacher",
        },
        path,
    )
    return path


TERMS = (
    "[{name: output, weight: 1.0}, {name: fitnet, weight: 2.0, args: {student_layers: [encoder.1, encoder.2], "
    "teacher_layers: [encoder.1, encoder.2], student_layout: BCFT}}]"
)


def _trainer(tmp_path, name, *overrides):
    from sekd.train.trainer import Trainer

    cfg = build_config(
        [tmp_path / "c.yaml"],
        ["--kd.teacher", str(_teacher(tmp_path)), "--kd.terms", TERMS, "--data.crop_slots", "1", *overrides],
    )
    return Trainer(cfg, tmp_path / "train", tmp_path / "valid", tmp_path / name, role="kd")


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("float16", 2e-2)])
def test_cached_teacher_gives_the_online_loss_and_gradients(tmp_path, tiny_data, dtype, tol):
    write_config(tmp_path / "c.yaml", train={"max_epochs": 1, "num_threads": 1})
    online = _trainer(tmp_path, "online")
    cached = _trainer(tmp_path, "cached", "--kd.cache_teacher", "true", "--kd.cache_dtype", dtype)
    assert online.teacher_cache is None and cached.teacher_cache is not None
    batch = next(iter(torch.utils.data.DataLoader(online.train_set, batch_size=4)))
    assert len(batch) == 3  # noisy, clean, crop ids
    first = batch[2][:2]

    def loss_and_grads(trainer, *args):
        trainer.model.zero_grad()
        trainer.kd_terms.zero_grad()
        loss, parts = trainer.compute_loss(*args)
        loss.backward()
        params = list(trainer.model.parameters()) + list(trainer.kd_terms.parameters())
        return loss.item(), parts, [p.grad.clone() for p in params]

    # a half-cached batch (its first two crops seen before), then a fully cached one
    cached.compute_loss(batch[0][:2], batch[1][:2], first)
    assert cached.teacher_cache.stats()["misses"] == 2
    for _ in range(2):
        ref, ref_parts, ref_grads = loss_and_grads(online, *batch)
        got, parts, grads = loss_and_grads(cached, *batch)
        assert got == pytest.approx(ref, rel=tol, abs=tol)
        assert parts["kd_fitnet"] == pytest.approx(ref_parts["kd_fitnet"], rel=tol, abs=tol)
        diff = torch.cat([(g - r).flatten() for g, r in zip(grads, ref_grads)])
        assert diff.norm() <= tol * torch.cat([r.flatten() for r in ref_grads]).norm()
        if dtype == "float32":  # and element by element
            for g, r in zip(grads, ref_grads):
                assert torch.allclose(g, r, rtol=1e-4, atol=1e-7)
    stats = cached.teacher_cache.stats()
    assert stats["misses"] == 4 and stats["hits"] == 2 + 4 and stats["crops"] == 4 and stats["bytes"] > 0
    if dtype == "float32":  # the training loop passes the crop ids: every crop cached once
        cached.run()
        assert "teacher cache: 8 crops" in (tmp_path / "cached" / "train.log").read_text()


def test_cache_needs_fixed_crops_and_a_teacher(tmp_path, tiny_data):
    from sekd.train.trainer import Trainer

    write_config(tmp_path / "c.yaml", train={"max_epochs": 1, "num_threads": 1})
    with pytest.raises(ConfigError, match="crop_slots"):
        _trainer(tmp_path, "a", "--kd.cache_teacher", "true", "--data.crop_slots", "0")
    cfg = build_config([tmp_path / "c.yaml"], ["--kd.cache_teacher", "true", "--data.crop_slots", "1"])
    with pytest.raises(ConfigError, match="needs an enhancement teacher"):
        Trainer(cfg, tmp_path / "train", tmp_path / "valid", tmp_path / "b")
