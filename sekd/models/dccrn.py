"""DCCRN: Deep Complex Convolution Recurrent Network (Hu et al., Interspeech 2020).

Layout follows the official code (github huyanxin/DeepComplexCRN, ``dc_crn.py``):
STFT (win 400, hop 100, FFT 512) -> drop the DC bin -> complex conv encoder
(kernel (5, 2) over (frequency, time), stride (2, 1), BatchNorm, PReLU) -> LSTM over
the flattened bottleneck (real LSTM + linear for DCCRN-E, complex LSTM for DCCRN-CL)
-> complex transposed-conv decoder with skip connections -> complex ratio mask
(``E``: polar, tanh-bounded magnitude; ``C``: complex multiply; ``R``: real/imag
separately) -> inverse STFT.

The official decoder keeps frames ``[1:]`` of each transposed convolution, which gives
each decoder layer one frame of look-ahead; that is ``causal=False`` here. The default,
``causal=True``, keeps frames ``[:T]``, so the network is strictly causal and its
algorithmic latency is the STFT window (25 ms at 16 kHz).

Shapes: ``forward(x: [B, 1, T] or [B, T]) -> [B, T]``.
Submodules for feature taps: ``encoder.<i>``, ``enhance`` (the recurrent block),
``decoder.<i>``.
"""

from __future__ import annotations

import torch
from torch import nn

from sekd.models import register_model
from sekd.models.complex_nn import ComplexConv2d, ComplexConvTranspose2d, ComplexLSTM, complex_cat
from sekd.models.stft import STFT

# Paper-size configurations (constructor arguments of ``dccrn``).
CONFIGS = {
    # Hu et al. 2020, Table 1 / official dc_crn.py: 3.67 M parameters.
    "dccrn_cl": dict(
        channels=[32, 64, 128, 256, 256, 256], rnn_units=256, rnn_layers=2, complex_lstm=True, masking_mode="E"
    ),
    # DCCRN-E: real LSTM 256 x 2 and the E mask: 3.74 M parameters.
    "dccrn_e": dict(channels=[16, 32, 64, 128, 256, 256], rnn_units=256, rnn_layers=2, masking_mode="E"),
    # Distil-DCCRN student (Han et al., IEEE SPL 2024, arXiv 2408.04267): the paper gives two
    # constraints, 1.1 M parameters (about 30 % of DCCRN-CL's 3.67 M, the DCCRN it compares with)
    # and about half of DCCRN's FLOPs, and keeps DCCRN's layout with fewer channels and LSTM
    # units; the exact widths were not found in the sources searched, so they are chosen here to
    # meet both: DCCRN-CL's first three encoder widths kept (32, 64, 128: the high-resolution layers,
    # where the MACs are), the deep three halved (256 -> 128) and the complex LSTM cut from 256 to
    # 112 units: 1,116,045 parameters (30.4 % of DCCRN-CL) and 4.22 GMAC per second of audio
    # (49 % of DCCRN-CL's 8.59; 106 % of DCCRN-E's 3.99). (Before 2026-12-01: every width halved,
    # [16, 32, 64, 128, 128, 128] with 184 units, 1,097,997 parameters but 2.21 GMAC/s, 26 %.)
    "distil_dccrn_student": dict(
        channels=[32, 64, 128, 128, 128, 128], rnn_units=112, rnn_layers=2, complex_lstm=True, masking_mode="E"
    ),
}


class _RealRNN(nn.Module):
    """DCCRN-E bottleneck: stacked LSTM over ``[T, B, D]`` then a linear map back to ``D``."""

    def __init__(self, dim: int, units: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, units, num_layers=layers)
        self.linear = nn.Linear(units, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.lstm(x)[0])


class _ComplexRNN(nn.Sequential):
    """DCCRN-CL bottleneck: complex LSTM layers, the last projecting back to ``D``."""

    def __init__(self, dim: int, units: int, layers: int) -> None:
        super().__init__(
            *[
                ComplexLSTM(dim if i == 0 else units, units, projection_size=dim if i == layers - 1 else None)
                for i in range(layers)
            ]
        )


@register_model("dccrn")
class DCCRN(nn.Module):
    """DCCRN with configurable width and depth.

    Args:
        channels: complex channel counts (real + imaginary, as in the official code) of
            the encoder layers; the paper's DCCRN-E uses ``[16, 32, 64, 128, 256, 256]``,
            DCCRN-CL ``[32, 64, 128, 256, 256, 256]``.
        rnn_units: LSTM units (for the complex LSTM: real + imaginary).
        rnn_layers: number of LSTM layers.
        complex_lstm: True for DCCRN-CL, False for DCCRN-E's real LSTM.
        masking_mode: ``E``, ``C`` or ``R``.
        win_len, hop, n_fft: STFT settings in samples.
        kernel_size: frequency kernel of the (5, 2) complex convolutions.
        causal: strictly causal decoder (default True); False reproduces the official
            code's one frame of look-ahead per decoder layer.
    """

    causal: bool

    def __init__(
        self,
        channels: list[int] | tuple[int, ...] = (16, 32, 64, 128, 256, 256),
        rnn_units: int = 256,
        rnn_layers: int = 2,
        complex_lstm: bool = False,
        masking_mode: str = "E",
        win_len: int = 400,
        hop: int = 100,
        n_fft: int = 512,
        kernel_size: int = 5,
        causal: bool = True,
        sample_rate: int = 16000,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if masking_mode not in ("E", "C", "R"):
            raise ValueError(f"masking_mode must be E, C or R, not {masking_mode!r}")
        if in_channels != 1:
            raise ValueError("DCCRN is single-channel (in_channels=1)")
        bins = n_fft // 2
        if bins % (2 ** len(channels)):
            raise ValueError(f"n_fft/2={bins} must be divisible by 2**{len(channels)} (one halving per layer)")
        self.causal, self.sample_rate, self.in_channels = causal, sample_rate, in_channels
        self.masking_mode = masking_mode
        self.stft = STFT(win_len, hop, n_fft)
        chans = [2] + list(channels)
        pad_f = kernel_size // 2
        self.encoder = nn.ModuleList(
            nn.Sequential(
                ComplexConv2d(chans[i], chans[i + 1], (kernel_size, 2), (2, 1), (pad_f, 1)),
                nn.BatchNorm2d(chans[i + 1]),
                nn.PReLU(),
            )
            for i in range(len(channels))
        )
        self.bottleneck_bins = bins // 2 ** len(channels)
        dim = self.bottleneck_bins * chans[-1]
        rnn = _ComplexRNN if complex_lstm else _RealRNN
        self.enhance = rnn(dim, rnn_units, rnn_layers)
        decoder = []
        for i in range(len(channels), 0, -1):
            layer = [
                ComplexConvTranspose2d(chans[i] * 2, chans[i - 1], (kernel_size, 2), (2, 1), (pad_f, 0), (1, 0), causal)
            ]
            if i != 1:
                layer += [nn.BatchNorm2d(chans[i - 1]), nn.PReLU()]
            decoder.append(nn.Sequential(*layer))
        self.decoder = nn.ModuleList(decoder)

    @property
    def algorithmic_latency(self) -> int:
        """Samples of look-ahead plus frame buffering: the STFT window length."""
        return self.stft.win_len if self.causal else -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            if x.shape[1] != 1:
                raise ValueError(f"DCCRN expects one input channel, got {x.shape[1]}")
            x = x[:, 0]
        length = x.shape[-1]
        spec = self.stft(x)  # [B, F, N] complex
        mask = self.mask_from_features(torch.stack([spec.real, spec.imag], 1)[:, :, 1:])  # DC bin dropped
        return self.stft.inverse(self.apply_mask(spec, mask), length)

    def mask_from_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Encoder, recurrent block, decoder: ``[B, 2, F-1, N]`` (real, imaginary) -> mask ``[B, 2, F-1, N]``."""
        skips = []
        out = feats
        for layer in self.encoder:
            out = layer(out)
            skips.append(out)
        b, c, f, n = out.shape
        out = out.permute(3, 0, 1, 2).reshape(n, b, c * f)
        out = self.enhance(out).reshape(n, b, c, f).permute(1, 2, 3, 0)
        for layer, skip in zip(self.decoder, reversed(skips)):
            out = layer(complex_cat([out, skip]))
        return out

    def apply_mask(self, spec: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The masked spectrum ``[B, F, N]`` (complex) from the mask ``[B, 2, F-1, N]`` (DC bin added back)."""
        mask = torch.nn.functional.pad(torch.complex(out[:, 0], out[:, 1]), (0, 0, 1, 0))
        if self.masking_mode == "E":
            mag = mask.abs()
            return spec * torch.tanh(mag) * (mask / (mag + 1e-8))
        if self.masking_mode == "C":
            return spec * mask
        return torch.complex(spec.real * mask.real, spec.imag * mask.imag)
