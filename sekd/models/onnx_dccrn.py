"""DCCRN in real arithmetic, for ONNX export: ``RealDCCRN(model)`` computes ``model(x)``.

torch's ONNX exporters do not convert complex tensors, and the STFT of ``sekd.models.stft``
frames with ``unfold`` and transforms with ``torch.fft``. This wrapper reuses the DCCRN's
own layers (they already work on stacked real/imaginary channels) and replaces only:

- the STFT by a strided ``conv1d`` whose kernels are the windowed DFT basis (cos and
  -sin rows, ``n_fft // 2 + 1`` bins of a ``win_len`` frame, as ``rfft(frame, n_fft)``);
- the masking by its real/imaginary formulas;
- the inverse STFT by a ``conv_transpose1d`` with the windowed inverse-DFT basis (the
  overlap-add) divided by the overlap-added squared window.

Same padding as the offline STFT, so the output equals ``model(x)`` to float precision
(``sekd-export --format onnx`` checks it). Input ``[B, 1, T]``, output ``[B, T]``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sekd.models.complex_nn import complex_cat
from sekd.models.dccrn import DCCRN


class RealDCCRN(nn.Module):
    def __init__(self, model: DCCRN) -> None:
        super().__init__()
        self.model = model.eval()
        stft = model.stft
        self.win, self.hop, self.n_fft = stft.win_len, stft.hop, stft.n_fft
        bins = self.n_fft // 2 + 1
        n = torch.arange(self.win, dtype=torch.float64)
        k = torch.arange(bins, dtype=torch.float64)
        angle = 2 * math.pi * k[:, None] * n[None, :] / self.n_fft  # [F, win]
        window = stft.window.to(torch.float64)
        analysis = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window  # [2F, win]
        # irfft: x[n] = (1/N) sum_k c_k (Re X_k cos - Im X_k sin), c = 1 at DC and Nyquist, else 2.
        c = torch.full((bins,), 2.0, dtype=torch.float64)
        c[0] = 1.0
        if self.n_fft % 2 == 0:
            c[-1] = 1.0
        synthesis = torch.cat([c[:, None] * torch.cos(angle), -c[:, None] * torch.sin(angle)]) / self.n_fft * window
        self.register_buffer("analysis", analysis.float()[:, None, :], persistent=False)  # [2F, 1, win]
        self.register_buffer("synthesis", synthesis.float()[:, None, :], persistent=False)  # [2F, 1, win]
        self.register_buffer("window_sq", (window ** 2).float()[None, None, :], persistent=False)
        self.eval()  # the wrapper too: exporters restore the wrapper's mode, and with it the model's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = x[:, 0]
        length = x.shape[-1]
        left = self.win - self.hop
        total = length + 2 * left
        extra = (self.hop - (total - self.win) % self.hop) % self.hop
        padded = F.pad(x[:, None], (left, left + extra))  # [B, 1, T']
        spec = F.conv1d(padded, self.analysis, stride=self.hop)  # [B, 2F, N]: real rows, then imaginary
        bins = self.n_fft // 2 + 1
        re, im = spec[:, :bins], spec[:, bins:]
        out = torch.stack([re, im], 1)[:, :, 1:]  # [B, 2, F-1, N]
        skips = []
        for layer in m.encoder:
            out = layer(out)
            skips.append(out)
        b, c, f, n = out.shape
        out = out.permute(3, 0, 1, 2).reshape(n, b, c * f)
        out = m.enhance(out).reshape(n, b, c, f).permute(1, 2, 3, 0)
        for layer, skip in zip(m.decoder, reversed(skips)):
            out = layer(complex_cat([out, skip]))
        mr = F.pad(out[:, 0], (0, 0, 1, 0))  # [B, F, N], DC bin back
        mi = F.pad(out[:, 1], (0, 0, 1, 0))
        if m.masking_mode == "E":
            mag = torch.sqrt(mr * mr + mi * mi)
            gain = torch.tanh(mag) / (mag + 1e-8)
            er, ei = gain * (re * mr - im * mi), gain * (re * mi + im * mr)
        elif m.masking_mode == "C":
            er, ei = re * mr - im * mi, re * mi + im * mr
        else:
            er, ei = re * mr, im * mi
        frames = torch.cat([er, ei], 1)  # [B, 2F, N]
        wave = F.conv_transpose1d(frames, self.synthesis, stride=self.hop)[:, 0]  # overlap-add
        ones = torch.ones_like(frames[:, :1])
        env = F.conv_transpose1d(ones, self.window_sq, stride=self.hop)[:, 0]
        wave = wave / env.clamp_min(1e-8)
        return wave[:, left:left + length]
