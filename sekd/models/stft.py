"""Short-time Fourier transform pair used by the spectral models.

Frames are taken with ``unfold`` (no centring, no reflection), so frame ``t`` covers
input samples ``[t*hop - pad, t*hop - pad + win_len)``; every output sample depends on
input samples at most ``win_len - 1`` ahead of it. That keeps causal models causal and
makes the algorithmic latency exactly ``win_len`` samples.
"""

from __future__ import annotations

import torch
from torch import nn


class STFT(nn.Module):
    """Analysis/synthesis pair with a periodic Hann window (DCCRN's ConvSTFT layout), or its
    square root (``window="sqrt_hann"``, Uformer's).

    ``forward(x: [B, T]) -> [B, F, N]`` complex, ``F = n_fft // 2 + 1``;
    ``inverse(spec: [B, F, N], length) -> [B, length]``. Synthesis is weighted
    overlap-add normalised by the summed squared window, so ``inverse(forward(x)) == x``.
    """

    def __init__(self, win_len: int = 400, hop: int = 100, n_fft: int = 512, window: str = "hann") -> None:
        super().__init__()
        if n_fft < win_len:
            raise ValueError(f"n_fft ({n_fft}) must be >= win_len ({win_len})")
        if not 0 < hop <= win_len // 2:
            # Every sample must lie in at least two frames for the overlap-add to invert.
            raise ValueError(f"hop ({hop}) must be in (0, win_len/2 = {win_len // 2}]")
        if window not in ("hann", "sqrt_hann"):
            raise ValueError(f"window must be hann or sqrt_hann, not {window!r}")
        self.win_len, self.hop, self.n_fft = win_len, hop, n_fft
        w = torch.hann_window(win_len, periodic=True)
        self.register_buffer("window", w.sqrt() if window == "sqrt_hann" else w, persistent=False)

    def _padding(self, length: int) -> tuple[int, int]:
        left = self.win_len - self.hop
        total = length + 2 * left
        extra = (-(total - self.win_len)) % self.hop
        return left, left + extra

    def num_frames(self, length: int) -> int:
        left, right = self._padding(length)
        return (length + left + right - self.win_len) // self.hop + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = self._padding(x.shape[-1])
        x = torch.nn.functional.pad(x, (left, right))
        frames = x.unfold(-1, self.win_len, self.hop) * self.window  # [B, N, win]
        return torch.fft.rfft(frames, n=self.n_fft).transpose(-1, -2)

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        left, right = self._padding(length)
        frames = torch.fft.irfft(spec.transpose(-1, -2), n=self.n_fft)[..., : self.win_len]
        frames = frames * self.window  # [B, N, win]
        n = frames.shape[-2]
        total = (n - 1) * self.hop + self.win_len
        fold = dict(output_size=(1, total), kernel_size=(1, self.win_len), stride=(1, self.hop))
        out = torch.nn.functional.fold(frames.transpose(-1, -2), **fold)[:, 0, 0]
        env = (self.window**2).expand(1, n, -1).transpose(-1, -2)
        env = torch.nn.functional.fold(env, **fold)[:, 0, 0]
        out = out / env.clamp_min(1e-8)
        return out[..., left : left + length]
