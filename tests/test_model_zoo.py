"""Every model family: its mini configs train on the mini corpus (a few steps, loss falls);
its paper-size presets build (sizes are checked in each family's own test)."""

from __future__ import annotations

import pytest
import torch

from sekd.models import PRESETS, build_model

from conftest import ROOT, sisnr_steps

MINI_CONFS = sorted((ROOT / "egs" / "mini" / "conf").glob("*.yaml")) + sorted(
    (ROOT / "egs" / "mini" / "conf" / "tuning").glob("*.yaml")
)


@pytest.fixture(scope="module")
def mini_batch(tmp_path_factory):
    from sekd.data import CropDataset
    from sekd.data.synth import make_mini_corpus

    root = tmp_path_factory.mktemp("mini") / "data"
    make_mini_corpus(
        root,
        seed=0,
        num_train=4,
        num_valid=1,
        num_test=1,
        num_train_speakers=2,
        num_valid_speakers=1,
        num_test_speakers=1,
    )
    ds = CropDataset(root / "train", segment=0.5, seed=0)
    items = [ds[i] for i in range(4)]
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


@pytest.mark.parametrize("conf", MINI_CONFS, ids=lambda p: str(p.relative_to(ROOT / "egs")))
def test_mini_config_trains(conf, mini_batch):
    from sekd.train.config import build_config

    cfg = build_config([conf])
    torch.manual_seed(0)
    model = build_model(cfg["model"]["name"], **cfg["model"]["args"]).train()
    losses = sisnr_steps(model, *mini_batch, steps=6, lr=2e-3)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert min(losses[-3:]) < losses[0] - 1.0, losses  # at least 1 dB better on the batch


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_build_and_run(preset):
    name, args = PRESETS[preset]
    model = build_model(name, **args).eval()
    channels = getattr(model, "in_channels", 1)
    with torch.no_grad():
        y = model(torch.randn(1, channels, 8000) * 0.1)
    assert y.shape == (1, 8000) and torch.isfinite(y).all()
