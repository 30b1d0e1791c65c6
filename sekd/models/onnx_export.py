"""Spectral models in real arithmetic, for ONNX export: ``real_arithmetic(model)``.

torch's ONNX exporter does not convert complex tensors, and ``sekd.models.stft`` frames
with ``unfold`` and transforms with ``torch.fft``. The wrappers here reuse a model's own
layers (they already work on stacked real/imaginary channels) and replace only:

- the STFT by a strided ``conv1d`` whose kernels are the windowed DFT basis (cos and
  -sin rows, ``n_fft // 2 + 1`` bins of a ``win_len`` frame, as ``rfft(frame, n_fft)``);
- the masking by its real/imaginary formulas;
- the inverse STFT by a ``conv_transpose1d`` with the windowed inverse-DFT basis (the
  overlap-add) divided by the overlap-added squared window.

Same padding as the offline STFT, so the output equals ``model(x)`` to float precision
(``sekd-export --format onnx`` checks it). Input ``[B, C, T]``, output ``[B, T]``.
MANNER needs no wrapper (time domain); DPDCRN's attention is written out in the model
(``_PathLayer._attention``) because the exporter fixes the sequence length inside
``nn.MultiheadAttention``. Uformer computes on complex tensors throughout: not covered.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sekd.models.dccrn import DCCRN
from sekd.models.dpdcrn import DPDCRN
from sekd.models.stft import STFT


class RealSTFT(nn.Module):
    """``forward(x [B, T]) -> (re, im)`` each ``[B, F, N]``; ``inverse(re, im, length) -> [B, T]``,
    equal to :class:`sekd.models.stft.STFT` (same framing and padding)."""

    def __init__(self, stft: STFT) -> None:
        super().__init__()
        self.win, self.hop, self.n_fft = stft.win_len, stft.hop, stft.n_fft
        self.bins = self.n_fft // 2 + 1
        n = torch.arange(self.win, dtype=torch.float64)
        k = torch.arange(self.bins, dtype=torch.float64)
        angle = 2 * math.pi * k[:, None] * n[None, :] / self.n_fft  # [F, win]
        window = stft.window.to(torch.float64)
        analysis = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window  # [2F, win]
        # irfft: x[n] = (1/N) sum_k c_k (Re X_k cos - Im X_k sin), c = 1 at DC and Nyquist, else 2.
        c = torch.full((self.bins,), 2.0, dtype=torch.float64)
        c[0] = 1.0
        if self.n_fft % 2 == 0:
            c[-1] = 1.0
        synthesis = torch.cat([c[:, None] * torch.cos(angle), -c[:, None] * torch.sin(angle)]) / self.n_fft * window
        self.register_buffer("analysis", analysis.float()[:, None, :], persistent=False)  # [2F, 1, win]
        self.register_buffer("synthesis", synthesis.float()[:, None, :], persistent=False)  # [2F, 1, win]
        self.register_buffer("window_sq", (window**2).float()[None, None, :], persistent=False)

    def _pads(self, length) -> tuple:
        left = self.win - self.hop
        total = length + 2 * left
        extra = (self.hop - (total - self.win) % self.hop) % self.hop
        return left, left + extra

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = F.conv1d(F.pad(x[:, None], self._pads(x.shape[-1])), self.analysis, stride=self.hop)
        return spec[:, : self.bins], spec[:, self.bins :]

    def inverse(self, re: torch.Tensor, im: torch.Tensor, length) -> torch.Tensor:
        frames = torch.cat([re, im], 1)  # [B, 2F, N]
        wave = F.conv_transpose1d(frames, self.synthesis, stride=self.hop)[:, 0]  # overlap-add
        env = F.conv_transpose1d(torch.ones_like(frames[:, :1]), self.window_sq, stride=self.hop)[:, 0]
        left = self.win - self.hop
        return (wave / env.clamp_min(1e-8))[:, left : left + length]


def _tanh_mask(re, im, mr, mi):
    """DCCRN-E / DPDCRN mask: ``spec * tanh(|m|) * m / |m|`` in real arithmetic."""
    mag = torch.sqrt(mr * mr + mi * mi)
    gain = torch.tanh(mag) / (mag + 1e-8)
    return gain * (re * mr - im * mi), gain * (re * mi + im * mr)


class RealDCCRN(nn.Module):
    def __init__(self, model: DCCRN) -> None:
        super().__init__()
        self.model, self.stft = model, RealSTFT(model.stft)
        self.eval()  # the wrapper too: exporters restore the wrapper's mode, and with it the model's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        length = x.shape[-1]
        re, im = self.stft(x[:, 0])
        out = m.mask_from_features(torch.stack([re, im], 1)[:, :, 1:])  # [B, 2, F-1, N]
        mr = F.pad(out[:, 0], (0, 0, 1, 0))  # [B, F, N], DC bin back
        mi = F.pad(out[:, 1], (0, 0, 1, 0))
        if m.masking_mode == "E":
            er, ei = _tanh_mask(re, im, mr, mi)
        elif m.masking_mode == "C":
            er, ei = re * mr - im * mi, re * mi + im * mr
        else:
            er, ei = re * mr, im * mi
        return self.stft.inverse(er, ei, length)


class RealDPDCRN(nn.Module):
    def __init__(self, model: DPDCRN) -> None:
        super().__init__()
        self.model, self.stft = model, RealSTFT(model.stft)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        b, c, length = x.shape
        re, im = self.stft(x.reshape(b * c, length))  # [B*C, F, N]
        re = re.reshape(b, c, re.shape[-2], re.shape[-1]).transpose(-1, -2)  # [B, C, N, F]
        im = im.reshape(b, c, im.shape[-2], im.shape[-1]).transpose(-1, -2)
        out = torch.stack([re, im], 2).flatten(1, 2)  # [B, 2C, N, F]
        for layer in m.encoder:
            out = layer(out)
        out = m.dual_path(out)
        for layer in m.decoder:
            out = layer(out)
        er, ei = _tanh_mask(re[:, 0], im[:, 0], out[:, 0], out[:, 1])  # [B, N, F]
        return self.stft.inverse(er.transpose(-1, -2), ei.transpose(-1, -2), length)


def real_arithmetic(model: nn.Module) -> nn.Module:
    """The module to hand to the ONNX exporter for ``model`` (real arithmetic only)."""
    from sekd.models.manner import MANNER

    if isinstance(model, DCCRN):
        return RealDCCRN(model)
    if isinstance(model, MANNER):
        return model.eval()
    if isinstance(model, DPDCRN):
        return RealDPDCRN(model)
    raise ValueError(
        f"ONNX export covers DCCRN, DPDCRN and MANNER; {type(model).__name__} computes on "
        "complex tensors that torch's ONNX exporter does not convert (use --format torchscript)"
    )
