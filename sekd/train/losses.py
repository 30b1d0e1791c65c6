"""Task losses on waveforms: ``loss(est [B, T], ref [B, T], noisy [B, C, T] = None) -> scalar``
(the noisy input is used by losses on the noise estimate, e.g. MANNER's ``l1_mrstft``)."""

from __future__ import annotations

import torch

from sekd.registry import Registry

LOSSES: Registry[type[torch.nn.Module]] = Registry("loss")


def si_snr(est: torch.Tensor, ref: torch.Tensor, eps: float = 1e-8, sign_aware: bool = False) -> torch.Tensor:
    """Scale-invariant SNR in dB per item, ``[B, T] x [B, T] -> [B]`` (means removed).

    ``s = <e, r> r / ||r||^2``, ``SI-SNR = 10 log10(||s||^2 / ||e - s||^2)`` (Le Roux et al. 2019).
    The scale ``<e, r> / ||r||^2`` may be negative: ``-r`` scores as well as ``r``. With
    ``sign_aware`` the scale is clamped at 0, so an estimate that anti-correlates with the
    reference scores as badly as silence, and the gradient shrinks it through 0 towards the
    right polarity (equal to SI-SNR wherever the estimate correlates positively).
    """
    est = est - est.mean(-1, keepdim=True)
    ref = ref - ref.mean(-1, keepdim=True)
    scale = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    target = (scale.clamp(min=0) if sign_aware else scale) * ref
    noise = est - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


def snr(est: torch.Tensor, ref: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """SNR in dB per item, ``10 log10(||r||^2 / ||r - e||^2)``: level and polarity count."""
    return 10 * torch.log10((ref.pow(2).sum(-1) + eps) / ((ref - est).pow(2).sum(-1) + eps))


@LOSSES.register("sisnr")
class SISNRLoss(torch.nn.Module):
    """Negative mean SI-SNR (dB): the DCCRN training objective.

    ``sign_aware`` (default true): SI-SNR is blind to the estimate's polarity, and a complex
    mask reaches the inverted solution as easily as the right one (a DCCRN trained with plain
    SI-SNR on the mini corpus output ``-0.9 x`` the clean speech); that leaves PESQ, STOI and
    SI-SDR unchanged but segSNR/CBAK (and anyone adding the output to another signal) wrong.
    ``sign_aware: false`` is the paper's loss exactly.
    """

    def __init__(self, sign_aware: bool = True) -> None:
        super().__init__()
        self.sign_aware = sign_aware

    def forward(self, est: torch.Tensor, ref: torch.Tensor, noisy: torch.Tensor | None = None) -> torch.Tensor:
        return -si_snr(est, ref, sign_aware=self.sign_aware).mean()


@LOSSES.register("snr")
class SNRLoss(torch.nn.Module):
    """Negative mean SNR (dB): fixes the output level as well as its polarity."""

    def forward(self, est: torch.Tensor, ref: torch.Tensor, noisy: torch.Tensor | None = None) -> torch.Tensor:
        return -snr(est, ref).mean()


@LOSSES.register("l1_mrstft")
class L1MRSTFTLoss(torch.nn.Module):
    """MANNER's (and Demucs') objective: waveform L1 + multi-resolution STFT loss.

    Per item ``b``: ``l(e, r) = mean|e - r| + f_sc * mean_k SC_k + f_mag * mean_k LogMag_k`` over
    resolutions ``k`` (FFT 1024/2048/512, hop 120/240/50, Hann window 600/1200/240, centred
    frames), with ``SC = ||Y| - |E||_F / ||Y||_F`` and ``LogMag = mean |log|Y| - log|E||``
    (magnitudes floored at ``sqrt(1e-7)``); ``f_sc = f_mag = 0.5`` as MANNER's config
    (``stft_sc_factor``, ``stft_mag_factor``). Level and polarity count.

    ``noise_weighted`` (default true, as the official MANNER ``train.py``): the same loss on the
    noise estimate ``x - e`` against the true noise ``x - r`` (``x``: the noisy input's first
    channel), mixed per item by the clean share of the energy,
    ``L = mean_b [a_b l(e, r) + (1 - a_b) l(x - e, x - r)]``, ``a_b = sum r^2 / (sum r^2 + sum (x - r)^2 + 2e-7)``
    (``WeightedLoss`` of the official ``time_loss.py``). ``noise_weighted: false``: ``mean_b l(e, r)``.
    """

    def __init__(
        self,
        fft_sizes=(1024, 2048, 512),
        hop_sizes=(120, 240, 50),
        win_lengths=(600, 1200, 240),
        factor_sc: float = 0.5,
        factor_mag: float = 0.5,
        noise_weighted: bool = True,
    ) -> None:
        super().__init__()
        if not len(fft_sizes) == len(hop_sizes) == len(win_lengths):
            raise ValueError("fft_sizes, hop_sizes and win_lengths must have the same length")
        self.resolutions = list(zip(fft_sizes, hop_sizes, win_lengths))
        self.factor_sc, self.factor_mag = factor_sc, factor_mag
        self.noise_weighted = noise_weighted

    @staticmethod
    def _mag(x: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
        window = torch.hann_window(win, device=x.device, dtype=x.dtype)
        spec = torch.stft(x, n_fft, hop, win, window, return_complex=True)
        return (spec.real**2 + spec.imag**2).clamp_min(1e-7).sqrt()

    def per_item(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """``l(e, r)`` per item, ``[B, T] x [B, T] -> [B]``."""
        sc = mag = 0.0
        for n_fft, hop, win in self.resolutions:
            e, r = self._mag(est, n_fft, hop, win), self._mag(ref, n_fft, hop, win)
            sc = sc + torch.linalg.matrix_norm(r - e) / torch.linalg.matrix_norm(r)
            mag = mag + (r.log() - e.log()).abs().mean((-2, -1))
        n = len(self.resolutions)
        return (est - ref).abs().mean(-1) + self.factor_sc * sc / n + self.factor_mag * mag / n

    def forward(self, est: torch.Tensor, ref: torch.Tensor, noisy: torch.Tensor | None = None) -> torch.Tensor:
        speech = self.per_item(est, ref)
        if not self.noise_weighted:
            return speech.mean()
        if noisy is None:
            raise ValueError("l1_mrstft with noise_weighted needs the noisy input (or set noise_weighted: false)")
        mix = noisy[:, 0] if noisy.dim() == 3 else noisy
        noise_ref = mix - ref
        a = ref.pow(2).sum(-1) / (ref.pow(2).sum(-1) + noise_ref.pow(2).sum(-1) + 2e-7)
        return (a * speech + (1 - a) * self.per_item(mix - est, noise_ref)).mean()


def build_loss(name: str, **args) -> torch.nn.Module:
    return LOSSES.build(name, **args)
