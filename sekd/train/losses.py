"""Task losses on waveforms ``[B, T]``."""
from __future__ import annotations

import torch


def si_snr(est: torch.Tensor, ref: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SNR in dB per item, ``[B, T] x [B, T] -> [B]`` (means removed).

    ``s = <e, r> r / ||r||^2``, ``SI-SNR = 10 log10(||s||^2 / ||e - s||^2)`` (Le Roux et al. 2019).
    """
    est = est - est.mean(-1, keepdim=True)
    ref = ref - ref.mean(-1, keepdim=True)
    scale = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * ref
    noise = est - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


class SISNRLoss(torch.nn.Module):
    """Negative mean SI-SNR (dB): the DCCRN training objective."""

    def forward(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return -si_snr(est, ref).mean()


LOSSES = {"sisnr": SISNRLoss}


def build_loss(name: str, **args) -> torch.nn.Module:
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}")
    return LOSSES[name](**args)
