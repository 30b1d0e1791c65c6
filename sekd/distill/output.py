"""``output``: the student regresses the teacher's enhanced output (classic SE KD).

Formula, for student output ``y_s`` and teacher output ``y_t`` (both ``[B, T]``):

- ``domain: wave``:  ``L = -SI-SNR(y_s, y_t)`` (the teacher's waveform as the target of
  the task loss; scale-invariant like DCCRN's own objective; sign-aware by default, as the
  task loss: plain SI-SNR scores ``-y_t`` as well as ``y_t``, ``sign_aware: false`` is that);
- ``domain: spec``:  ``L = mean |S(y_s) - S(y_t)|`` over a complex STFT ``S`` (512-point,
  hop 128), real and imaginary parts, plus the same L1 on magnitudes;
- ``domain: both``:  the sum of the two.

The teacher output is computed without gradients; this term has no parameters.
"""

from __future__ import annotations

import torch

from sekd.distill import KDContext, KDTerm, register_kd
from sekd.train.losses import si_snr


@register_kd("output")
class OutputKD(KDTerm):
    def __init__(self, domain: str = "wave", n_fft: int = 512, hop: int = 128, sign_aware: bool = True) -> None:
        super().__init__()
        if domain not in ("wave", "spec", "both"):
            raise ValueError(f"output KD domain must be wave, spec or both, not {domain!r}")
        self.domain, self.n_fft, self.hop, self.sign_aware = domain, n_fft, hop, sign_aware

    def _spec(self, x: torch.Tensor) -> torch.Tensor:
        window = torch.hann_window(self.n_fft, device=x.device, dtype=x.dtype)
        return torch.stft(x, self.n_fft, self.hop, window=window, return_complex=True)

    def forward(self, ctx: KDContext) -> torch.Tensor:
        target = ctx.teacher_out.detach()
        loss = ctx.student_out.new_zeros(())
        if self.domain in ("wave", "both"):
            loss = loss - si_snr(ctx.student_out, target, sign_aware=self.sign_aware).mean()
        if self.domain in ("spec", "both"):
            s, t = self._spec(ctx.student_out), self._spec(target)
            loss = loss + (s - t).abs().mean() + (s.abs() - t.abs()).abs().mean()
        return loss
