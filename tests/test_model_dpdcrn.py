"""DPDCRN: paper sizes, shapes (1 and 4 channels), taps, causality, one training step, loss falls."""

from __future__ import annotations

import pytest
import torch

import sekd.models.dpdcrn  # noqa: F401  (registers "dpdcrn")
from sekd.distill.taps import FeatureTaps
from sekd.models import MODELS, build_model, count_parameters
from sekd.models.dpdcrn import CONFIGS
from sekd.train.losses import SISNRLoss

from conftest import assert_gradients_everywhere, sisnr_steps

TINY = dict(channels=16, num_blocks=2)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("dpdcrn_teacher", 3.22e6),  # official DPDCRN_Tea (128 ch, 4 blocks): 3,218,118 here
        ("dpdcrn_student", 0.60e6),  # official DPDCRN_Stu_M (64 ch, 1 block): 595,494 here
        ("dpdcrn_student_causal", 0.60e6),  # its causal variant, for streaming
    ],
)
def test_paper_sizes(name, expected):
    n = count_parameters(build_model("dpdcrn", **CONFIGS[name]))
    assert abs(n - expected) / expected < 0.03, (name, n)
    # the presets are the official (non-causal) model, but for the streaming variant; the causal
    # stand-ins (per-frame norms, masked attention) add no parameters
    assert CONFIGS[name]["causal"] is name.endswith("_causal")
    assert count_parameters(build_model("dpdcrn", **{**CONFIGS[name], "causal": not CONFIGS[name]["causal"]})) == n


def test_registry_and_attributes():
    assert MODELS["dpdcrn"] is sekd.models.dpdcrn.DPDCRN
    model = build_model("dpdcrn", **TINY)
    assert model.causal is True and model.algorithmic_latency == 512
    assert model.sample_rate == 16000 and model.in_channels == 1
    assert build_model("dpdcrn", **TINY, causal=False).algorithmic_latency == -1
    with pytest.raises(ValueError, match="n_fft"):
        build_model("dpdcrn", n_fft=256, win_len=256, hop=128)
    with pytest.raises(ValueError, match="input channel"):
        model(torch.randn(1, 2, 1000))


@pytest.mark.parametrize("in_channels,length", [(1, 4000), (1, 1237), (4, 3001), (8, 2048)])
def test_shapes(in_channels, length):
    torch.manual_seed(0)
    model = build_model("dpdcrn", **TINY, in_channels=in_channels).eval()
    x = torch.randn(2, in_channels, length)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, length) and torch.isfinite(y).all()
        if in_channels == 1:
            assert torch.equal(model(x[:, 0]), y)  # [B, T] is read as one channel
        assert torch.allclose(model(x[1:]), y[1:], atol=1e-5)  # batch items independent


def test_feature_taps():
    model = build_model("dpdcrn", **TINY).eval()
    paths = [f"encoder.{i}" for i in range(3)] + [f"decoder.{i}" for i in range(3)]
    paths += ["dual_path", "dual_path.mid.0", "dual_path.mid.1", "dual_path.blocks.1"]
    x = torch.randn(2, 1, 4000)
    with FeatureTaps(model, paths) as taps, torch.no_grad():
        model(x)
    n, c = model.stft.num_frames(4000), TINY["channels"]
    f = taps.features
    assert f["encoder.0"].shape == (2, c, n, 129)
    assert f["encoder.1"].shape == f["encoder.2"].shape == (2, c, n, 64)
    assert f["dual_path.mid.0"].shape == f["dual_path.mid.1"].shape == (2, c, n, 64)
    assert torch.equal(f["dual_path"], f["dual_path.mid.1"])  # the last readout feeds the decoder
    assert f["dual_path.blocks.1"].shape == (2, c // 2, n, 64)
    assert f["decoder.0"].shape == (2, c, n, 64)
    assert f["decoder.1"].shape == (2, c, n, 129)
    assert f["decoder.2"].shape == (2, 2, n, 257)


@pytest.mark.parametrize("in_channels", [1, 4])
def test_causal(in_channels):
    """Perturbing the input from sample n0 on leaves outputs before n0 - win_len unchanged."""
    torch.manual_seed(0)
    model = build_model("dpdcrn", **TINY, in_channels=in_channels).eval()
    x = torch.randn(1, in_channels, 8000)
    n0 = 5000
    x2 = x.clone()
    x2[..., n0:] += torch.randn(in_channels, 8000 - n0)
    with torch.no_grad():
        y, y2 = model(x), model(x2)
    latency = model.algorithmic_latency
    assert torch.allclose(y[..., : n0 - latency], y2[..., : n0 - latency], atol=1e-6)
    assert not torch.allclose(y[..., n0:], y2[..., n0:], atol=1e-3)


def test_official_layout_is_not_causal():
    """causal=False (utterance-level norms, unmasked time attention) sees the future."""
    torch.manual_seed(0)
    model = build_model("dpdcrn", **TINY, causal=False).eval()
    x = torch.randn(1, 1, 8000)
    x2 = x.clone()
    x2[..., 5000:] += torch.randn(3000)
    with torch.no_grad():
        assert not torch.allclose(model(x)[..., :4000], model(x2)[..., :4000], atol=1e-6)


@pytest.mark.parametrize("in_channels", [1, 4])
def test_one_training_step_reaches_every_parameter(in_channels):
    torch.manual_seed(0)
    model = build_model("dpdcrn", **TINY, in_channels=in_channels).train()
    clean = torch.randn(2, 1, 4000)
    noisy = clean + 0.5 * torch.randn(2, in_channels, 4000)
    loss = SISNRLoss()(model(noisy), clean[:, 0])
    loss.backward()
    assert_gradients_everywhere(model)


def test_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model("dpdcrn", channels=16, num_blocks=1).train()
    t = torch.arange(2000) / 16000
    clean = torch.stack([torch.sin(2 * torch.pi * 440 * t), torch.sin(2 * torch.pi * 660 * t)])[:, None]
    noisy = clean + 0.3 * torch.randn_like(clean)
    losses = sisnr_steps(model, noisy, clean[:, 0], 8, lr=3e-3)
    assert losses[-1] < losses[0] - 3.0, losses


@pytest.mark.parametrize("mask_future", [False, True])
def test_fused_attention_equals_multihead_attention(mask_future):
    """The path layer's attention (fused scaled_dot_product_attention; written out under ONNX
    export) gives nn.MultiheadAttention's values, with the causal mask where the layer has one."""
    from sekd.models.dpdcrn import _PathLayer

    torch.manual_seed(0)
    layer = _PathLayer(16, heads=4, mask_future=mask_future).eval()
    h = torch.randn(3, 37, 16)
    mask = torch.ones(37, 37, dtype=torch.bool).triu(1) if mask_future else None
    with torch.no_grad():
        expected = layer.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        torch.testing.assert_close(layer._attention(h), expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("causal", [True, False])
def test_dense_block_equals_left_padding_the_input(causal):
    """The dense block's conv-padding-and-crop gives the values of zero-padding its input on the
    left (the official ``ConstantPad2d((1, 1, 2**i, 0))`` before each conv), and their gradients."""
    import torch.nn.functional as F

    from sekd.models.dpdcrn import _DilatedDense

    torch.manual_seed(0)
    block = _DilatedDense(8, 4, causal)
    x = torch.randn(2, 8, 21, 16, requires_grad=True)
    out = block(x)
    skip, ref = x, x
    for i, (_, conv, norm, act) in enumerate(block.layers):
        ref = act(norm(F.conv2d(F.pad(skip, (1, 1, 2**i, 0)), conv.weight, conv.bias, dilation=(2**i, 1))))
        skip = torch.cat([ref, skip], 1)
    assert (out - ref).abs().max() <= 1e-6
    g, g_ref = (torch.autograd.grad(y.square().sum(), x)[0] for y in (out, ref))
    assert torch.allclose(g, g_ref, atol=1e-5)
