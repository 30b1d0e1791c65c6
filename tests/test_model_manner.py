"""MANNER: paper sizes, shapes, attention-map taps, one training step, loss falls."""

from __future__ import annotations

import pytest
import torch

import sekd.models.manner  # noqa: F401  (registers "manner")
from sekd.distill.taps import FeatureTaps
from sekd.models import MODELS, build_model, count_parameters
from sekd.models.manner import CONFIGS, _ConvBN
from sekd.train.losses import SISNRLoss

from conftest import assert_gradients_everywhere, sisnr_steps

# hidden=12: with hidden=6 the 2-unit channel-attention MLPs can start with every ReLU unit
# dead (zero gradient), an artefact of the tiny width.
TINY = dict(hidden=12, depth=2, kernel_size=8, stride=4, segment_len=8)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("manner_base", 24.07e6),  # Park et al. 2022 / official code: 24,068,671 here
        ("manner_small", 21.25e6),  # MA blocks only in the deepest layers: 21,253,921 here
        ("manner_s_8.1gf", 24.07e6 / 15.4),  # MV-AT abstract: 15.4x fewer than base; 1,564,809 here
    ],
)
def test_paper_sizes(name, expected):
    n = count_parameters(build_model("manner", **CONFIGS[name]))
    assert abs(n - expected) / expected < 0.03, (name, n)


def test_registry_and_attributes():
    assert MODELS["manner"] is sekd.models.manner.MANNER
    model = build_model("manner", **TINY)
    assert model.causal is False and model.algorithmic_latency == -1
    assert model.sample_rate == 16000 and model.in_channels == 1
    with pytest.raises(ValueError, match="attention"):
        build_model("manner", attention="some")


@pytest.mark.parametrize("length", [1000, 1024, 1237, 3001])
def test_shapes(length):
    torch.manual_seed(0)
    model = build_model("manner", **TINY).eval()
    assert model.valid_length(length) >= length
    x = torch.randn(2, 1, length)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, length)
        assert torch.isfinite(y).all()
        assert torch.equal(model(x[:, 0]), y)  # [B, T] is read as one channel
        # batch items are independent in eval mode (per-utterance input normalisation)
        assert torch.allclose(model(x[1:]), y[1:], atol=1e-5)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_paper_configs_run(name):
    model = build_model("manner", **CONFIGS[name]).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 1, 1601))
    assert y.shape == (1, 1601) and torch.isfinite(y).all()


def test_attention_maps_are_tappable():
    torch.manual_seed(0)
    model = build_model("manner", **TINY).eval()
    b, length, seg = 2, 2000, TINY["segment_len"]
    stages = [f"encoder.{i}" for i in range(2)] + [f"decoder.{j}" for j in range(2)]
    paths = [f"{s}.attention.{v}.map" for s in stages for v in ("channel", "global_", "local")]
    paths += [f"{s}.attention.branch_out.{k}" for s in stages for k in range(3)]
    with FeatureTaps(model, paths) as taps, torch.no_grad():
        model(torch.randn(b, 1, length))
    for s in stages:
        block = model.get_submodule(f"{s}.attention")
        m = block.branch_in[0][0].out_channels
        ch = taps.features[f"{s}.attention.channel.map"]
        gl = taps.features[f"{s}.attention.global_.map"]
        lo = taps.features[f"{s}.attention.local.map"]
        assert ch.shape == (b, m, 1) and ((ch > 0) & (ch < 1)).all()
        p = gl.shape[-1]
        assert gl.shape == (b, m, 1, p, p)
        assert torch.allclose(gl.sum(-1), torch.ones(()), atol=1e-5)
        assert lo.shape == (b, 1, p, seg) and ((lo > 0) & (lo < 1)).all()
        frames = taps.features[f"{s}.attention.branch_out.0"].shape[-1]
        assert p == (frames + seg) // (seg // 2) + 1  # one chunk of zero padding at both ends, 50 % overlap
        for k in range(3):
            assert taps.features[f"{s}.attention.branch_out.{k}"].shape == (b, m, frames)


def test_small_has_attention_only_in_deepest_layers():
    model = build_model("manner", **{**TINY, "depth": 3, "attention": "last"})
    assert [layer.attention is not None for layer in model.encoder] == [False, False, True]
    assert [layer.attention is not None for layer in model.decoder] == [True, False, False]


def test_one_training_step_reaches_every_parameter():
    torch.manual_seed(0)
    model = build_model("manner", **TINY).train()
    clean = torch.randn(2, 1, 2000)
    noisy = clean + 0.5 * torch.randn_like(clean)
    loss = SISNRLoss()(model(noisy), clean[:, 0])
    loss.backward()
    assert_gradients_everywhere(model)


def test_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model("manner", **TINY).train()
    t = torch.arange(2000) / 16000
    clean = torch.stack([torch.sin(2 * torch.pi * 440 * t), torch.sin(2 * torch.pi * 660 * t)])[:, None]
    noisy = clean + 0.3 * torch.randn_like(clean)
    losses = sisnr_steps(model, noisy, clean[:, 0], 15, lr=3e-3)
    assert losses[-1] < losses[0] - 3.0, losses


def test_bn_momentum_sets_how_fast_eval_statistics_follow_training():
    """Official BasicConv BatchNorms keep momentum 0.01; ``bn_momentum`` changes them all.

    After 30 train-mode passes over one batch, a BatchNorm's running mean has moved
    1 - (1 - m)**30 of the way to the batch mean: 96 % with 0.1, 26 % with 0.01.
    """
    x = torch.randn(4, 4000) * 0.05

    def share_followed(momentum):
        torch.manual_seed(0)
        model = build_model("manner", hidden=3, depth=2, segment_len=8, bn_momentum=momentum).train()
        assert {m[1].momentum for m in model.modules() if isinstance(m, _ConvBN)} == {momentum}
        bn = model.encoder[0].attention.merge[1]
        seen = []
        bn.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].mean((0, 2))))
        with torch.no_grad():
            for _ in range(30):
                model(x)
        return (bn.running_mean / seen[-1]).mean().item()

    assert build_model("manner", hidden=3, depth=2, segment_len=8).encoder[0].attention.merge[1].momentum == 0.01
    assert share_followed(0.1) == pytest.approx(1 - 0.9**30, abs=0.02)
    assert share_followed(0.01) == pytest.approx(1 - 0.99**30, abs=0.02)
