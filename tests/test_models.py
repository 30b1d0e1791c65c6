"""DCCRN: paper sizes, shapes, causality, STFT round trip, registry."""

from __future__ import annotations

import pytest
import torch

from sekd.models import MODELS, build_model, count_parameters
from sekd.models.stft import STFT


@pytest.mark.parametrize("length", [16000, 16037, 399])
def test_stft_perfect_reconstruction(length):
    stft = STFT(400, 100, 512)
    x = torch.randn(2, length)
    assert torch.allclose(stft.inverse(stft(x), length), x, atol=1e-5)


@pytest.mark.parametrize(
    "name,args,expected",
    [
        # Hu et al. 2020 / huyanxin dc_crn.py; Asteroid's DCCRNet (DCCRN-CL) has 3,669,336.
        ("DCCRN-CL", dict(channels=[32, 64, 128, 256, 256, 256], rnn_units=256, complex_lstm=True), 3.67e6),
        ("DCCRN-E", dict(channels=[16, 32, 64, 128, 256, 256], rnn_units=256), 3.74e6),
    ],
)
def test_paper_sizes(name, args, expected):
    n = count_parameters(build_model("dccrn", **args))
    assert abs(n - expected) / expected < 0.01, (name, n)


@pytest.mark.parametrize("mode", ["E", "C", "R"])
def test_shapes_and_gradients(mode):
    model = build_model("dccrn", channels=[8, 16, 16], rnn_units=32, masking_mode=mode, win_len=256, hop=128, n_fft=256)
    x = torch.randn(2, 1, 4000, requires_grad=True)
    y = model(x)
    assert y.shape == (2, 4000)
    y.pow(2).mean().backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters())
    assert torch.equal(model(x[:, 0]), model(x))  # [B, T] is read as one channel


@pytest.mark.parametrize("complex_lstm", [False, True])
def test_causal(complex_lstm):
    """Perturbing the input from sample n0 on leaves outputs before n0 - win_len unchanged."""
    torch.manual_seed(0)
    model = build_model("dccrn", channels=[8, 16, 16, 32], rnn_units=32, complex_lstm=complex_lstm).eval()
    x = torch.randn(1, 1, 8000)
    n0 = 5000
    x2 = x.clone()
    x2[..., n0:] += torch.randn(8000 - n0)
    with torch.no_grad():
        y, y2 = model(x), model(x2)
    latency = model.algorithmic_latency
    assert latency == 400
    assert torch.allclose(y[..., : n0 - latency], y2[..., : n0 - latency], atol=1e-6)
    assert not torch.allclose(y[..., n0:], y2[..., n0:], atol=1e-3)


def test_official_lookahead_is_not_causal():
    """causal=False (the official decoder's [1:] slice) does see the future: the check above can fail."""
    torch.manual_seed(0)
    model = build_model("dccrn", channels=[8, 16, 16, 32], rnn_units=32, causal=False).eval()
    x = torch.randn(1, 1, 8000)
    x2 = x.clone()
    x2[..., 5000:] += torch.randn(3000)
    with torch.no_grad():
        assert not torch.allclose(model(x)[..., :4600], model(x2)[..., :4600], atol=1e-6)


def test_registry_errors():
    assert "dccrn" in MODELS
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        build_model("nope")
    with pytest.raises(ValueError, match="divisible"):
        build_model("dccrn", channels=[8] * 9)
