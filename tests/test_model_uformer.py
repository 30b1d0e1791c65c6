"""Uformer (the Distil-DCCRN teacher) and the Distil-DCCRN student size."""

from __future__ import annotations

import pytest
import torch

import sekd.models.uformer  # noqa: F401  (registers "uformer")
from sekd.distill.taps import FeatureTaps
from sekd.models import MODELS, build_model, count_parameters
from sekd.models.dccrn import CONFIGS as DCCRN_CONFIGS
from sekd.models.stft import STFT
from sekd.models.uformer import CONFIGS, OFFICIAL_LEARNABLE_PARAMS, OFFICIAL_STFT_KERNEL_PARAMS, Uformer
from sekd.train.losses import SISNRLoss

from conftest import sisnr_steps

DISTIL_DCCRN_STUDENT = DCCRN_CONFIGS["distil_dccrn_student"]

TINY = dict(channels=[4, 8, 8], ff_hidden=8, attention_hidden=4, conv_hidden=4, dilations=[1, 2], dropout=0.0)


@pytest.fixture(scope="module")
def full_model() -> Uformer:
    torch.manual_seed(0)
    return build_model("uformer", **CONFIGS["uformer"])


def test_parameter_count(full_model):
    """Official uformer.py: 3,336,049 learnable + 1,049,600 frozen STFT kernel entries = 4,385,649."""
    n = count_parameters(full_model)
    assert n == OFFICIAL_LEARNABLE_PARAMS == 3_336_049
    assert n + OFFICIAL_STFT_KERNEL_PARAMS == 4_385_649
    assert abs(n + OFFICIAL_STFT_KERNEL_PARAMS - 4.39e6) / 4.39e6 < 0.03


def test_distil_dccrn_student_size():
    """Han et al. 2024: 1.1 M parameters, about 30 % of DCCRN-CL's 3.67 M, and about half its FLOPs."""
    from sekd.models.profile import macs_per_second

    student = build_model("dccrn", **DISTIL_DCCRN_STUDENT)
    n = count_parameters(student)
    assert abs(n - 1.1e6) / 1.1e6 < 0.03, n
    dccrn_cl = build_model("dccrn", channels=[32, 64, 128, 256, 256, 256], rnn_units=256, complex_lstm=True)
    assert 0.27 < n / count_parameters(dccrn_cl) < 0.33
    assert 0.45 < macs_per_second(student, 1.0) / macs_per_second(dccrn_cl, 1.0) < 0.55


def test_registry_and_attributes(full_model):
    assert MODELS["uformer"] is Uformer
    assert full_model.causal is False and full_model.algorithmic_latency == -1
    assert full_model.sample_rate == 16000 and full_model.in_channels == 1
    assert (full_model.stft.win_len, full_model.stft.hop, full_model.stft.n_fft) == (400, 160, 512)


@pytest.mark.parametrize("length", [16000, 16037, 3999])
def test_sqrt_hann_stft_reconstruction(length):
    stft = STFT(400, 160, 512, window="sqrt_hann")
    x = torch.randn(2, length, dtype=torch.float64)
    stft.window = stft.window.double()
    assert torch.allclose(stft.inverse(stft(x), length), x, atol=1e-9)


@pytest.mark.parametrize("length", [16000, 8123, 1600])
def test_shapes(full_model, length):
    full_model.eval()
    x = torch.randn(2, 1, length)
    with torch.no_grad():
        y = full_model(x)
        assert y.shape == (2, length)
        assert torch.isfinite(y).all()
        assert torch.equal(full_model(x[:, 0]), y)  # [B, T] is read as one channel
    with pytest.raises(ValueError):
        full_model(torch.randn(1, 2, length))


def test_feature_taps(full_model):
    full_model.eval()
    x = torch.randn(1, 1, 16000)
    frames = full_model.stft.num_frames(16000)
    with FeatureTaps(full_model, ["encoder.0", "encoder_real.5", "conformer", "decoder.5"]) as taps, torch.no_grad():
        full_model(x)
    f = taps.features
    assert f["encoder.0"].shape == (1, 16, 128, frames)  # 8 complex channels: real then imaginary
    assert f["encoder_real.5"].shape == (1, 128, 4, frames)
    cplx, mag = f["conformer"]
    assert cplx.shape == (1, 256, 4, frames) and mag.shape == (1, 128, 4, frames)
    assert f["decoder.5"].shape == (1, 2, 256, frames)


def test_training_step_reaches_every_parameter(full_model):
    full_model.train()
    full_model.zero_grad()
    torch.manual_seed(1)
    clean = torch.randn(2, 8000)
    noisy = clean + 0.5 * torch.randn(2, 8000)
    loss = SISNRLoss()(full_model(noisy[:, None]), clean)
    loss.backward()
    missing = [n for n, p in full_model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    assert all(torch.isfinite(p.grad).all() for p in full_model.parameters())
    full_model.zero_grad()


def test_non_causal():
    """Global time attention: changing the end of the input changes the start of the output."""
    torch.manual_seed(0)
    model = build_model("uformer", **TINY).eval()
    x = torch.randn(1, 1, 8000)
    x2 = x.clone()
    x2[..., 6000:] += torch.randn(2000)
    with torch.no_grad():
        assert not torch.allclose(model(x)[..., :2000], model(x2)[..., :2000], atol=1e-6)


def test_loss_falls_on_tiny_batch():
    torch.manual_seed(0)
    model = build_model("uformer", **TINY)
    t = torch.arange(8000) / 16000
    clean = torch.stack(
        [torch.sin(2 * torch.pi * f0 * t) * (0.5 + 0.5 * torch.sin(2 * torch.pi * 4 * t)) for f0 in (180.0, 260.0)]
    )
    noisy = clean + 0.5 * torch.randn(2, 8000)
    losses = sisnr_steps(model, noisy, clean, 25, lr=3e-3)
    assert min(losses[-5:]) < losses[0] - 1.0, losses
