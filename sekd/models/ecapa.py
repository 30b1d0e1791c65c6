"""ECAPA-TDNN speaker embedding extractor (Desplanques et al., Interspeech 2020, arXiv 2005.07143).

Layout (the paper's Fig. 2; sizes as in WeSpeaker's ``ECAPA_TDNN_GLOB_c1024`` / ``_c512``):

- ``frontend``: 80-d log mel filterbank computed in torch (:class:`Fbank`), ``[B, T] -> [B, 80, T']``.
- ``layer1``: Conv1d(80 -> C, kernel 5) -> ReLU -> BatchNorm.
- ``layer2``, ``layer3``, ``layer4``: SE-Res2Blocks (kernel 3, dilation 2, 3, 4; Res2Net scale 8;
  SE bottleneck 128), each ``x + SE(Conv1x1(Res2(Conv1x1(x))))``.
- ``mfa``: multi-layer feature aggregation, Conv1d(3C -> 1536, kernel 1) -> ReLU on the
  concatenated outputs of the three SE-Res2Blocks.
- ``pooling``: attentive statistics pooling with global context (the frame features are
  concatenated with their utterance mean and std before the attention MLP, bottleneck 128),
  ``[B, 1536, T'] -> [B, 3072]`` (weighted mean and std).
- ``pool_bn``: BatchNorm1d(3072); ``embedding``: Linear(3072 -> 192) -> BatchNorm1d(192).

Parameters (``count_parameters``): C = 1024: 14,657,472 (WeSpeaker reports 14.65 M; it omits the
final BatchNorm, 384 parameters); C = 512: 6,191,104; C = 256: 3,331,104.

Choices where the paper is silent or implementations differ:

- Each SE-Res2Block takes the previous block's output (WeSpeaker, SpeechBrain), not the sum of
  all previous outputs that some re-implementations use.
- Conv -> ReLU -> BN order and biased convolutions (WeSpeaker); the attention MLP of the pooling
  is Conv1x1 -> tanh -> Conv1x1 -> softmax over time without a BatchNorm (WeSpeaker's ``ASTP``).
- Front end: as the voxceleb_trainer ECAPA recipe (see :class:`Fbank`): pre-emphasis 0.97,
  Hamming window of 25 ms, 10 ms hop, 512-point FFT, power spectrum, 80 HTK-mel triangles over
  20-7600 Hz, ``log(x + 1e-6)``, mean over time subtracted per utterance and bin.
- Variable lengths inside a batch are not masked: train on equal-length crops and embed
  evaluation utterances one at a time (or batch equal lengths).

Shapes: ``forward(wav: [B, T] or [B, 1, T]) -> [B, embed_dim]``; ``fbank(wav) -> [B, n_mels, T']``;
``embed_fbank(feats) -> [B, embed_dim]`` (for integrated gradients on the features);
``frame_features(feats) -> [B, 1536, T']`` (the MFA output). ``T' = T // hop + 1``.
Submodules for feature taps: ``frontend``, ``layer1`` ... ``layer4``, ``mfa``, ``pooling``,
``pool_bn``, ``embedding``.
"""

from __future__ import annotations

import torch
from torch import nn

from sekd.models import register_model

# Paper-size configurations (constructor arguments of ``ecapa_tdnn``).
CONFIGS = {
    # Desplanques et al. 2020, C = 1024 (the paper's best system); WeSpeaker ECAPA_TDNN_GLOB_c1024: 14.65 M.
    "ecapa_c1024": dict(channels=1024, embed_dim=192),
    # C = 512 (the paper's small system); WeSpeaker ECAPA_TDNN_GLOB_c512: 6.19 M.
    "ecapa_c512": dict(channels=512, embed_dim=192),
    # A smaller student (not in the paper): C = 256, the same MFA/pooling/embedding, 3.33 M.
    "ecapa_c256": dict(channels=256, embed_dim=192),
}


def hz_to_mel(f: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(f, dtype=torch.float64) / 700.0)


def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float, f_max: float) -> torch.Tensor:
    """``[n_mels, n_fft // 2 + 1]`` triangular filters, unnormalised (peak 1).

    Centres are equally spaced on the HTK mel scale between ``f_min`` and ``f_max``; each
    triangle rises linearly in Hz from the previous centre to its own and falls to the next
    (torchaudio's ``melscale_fbanks`` with ``norm=None``, ``mel_scale="htk"``).
    """
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2, dtype=torch.float64))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (freqs - lower) / (centre - lower)
    fall = (upper - freqs) / (upper - centre)
    return torch.clamp(torch.minimum(rise, fall), min=0.0).float()


class Fbank(nn.Module):
    """Log mel filterbank, ``[B, T]`` or ``[B, 1, T]`` -> ``[B, n_mels, T // hop + 1]``.

    ``y[n] = x[n] - 0.97 x[n-1]`` (``x[-1] = 0``), frames centred on ``n * hop`` (reflect
    padding of ``n_fft // 2``), periodic Hamming window of ``win_length`` zero-padded to
    ``n_fft``, power spectrum ``|X|^2``, mel triangles (:func:`mel_filterbank`),
    ``log(mel + log_floor)``, then (``mean_norm``) the mean over frames of each bin is
    subtracted. Always computed in float32 (autocast off). No parameters.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 80,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        f_min: float = 20.0,
        f_max: float = 7600.0,
        preemphasis: float = 0.97,
        log_floor: float = 1e-6,
        mean_norm: bool = True,
    ) -> None:
        super().__init__()
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise ValueError(f"need 0 <= f_min < f_max <= {sample_rate / 2}, got {f_min}, {f_max}")
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.preemphasis, self.log_floor, self.mean_norm = preemphasis, log_floor, mean_norm
        self.register_buffer("window", torch.hamming_window(win_length), persistent=False)
        self.register_buffer("mel", mel_filterbank(n_mels, n_fft, sample_rate, f_min, f_max), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() == 3:
            if wav.shape[1] != 1:
                raise ValueError(f"ECAPA-TDNN takes one channel, got {wav.shape[1]}")
            wav = wav[:, 0]
        with torch.autocast(device_type=wav.device.type, enabled=False):
            x = wav.float()
            if self.preemphasis:
                x = torch.cat([x[:, :1], x[:, 1:] - self.preemphasis * x[:, :-1]], dim=1)
            spec = torch.stft(
                x,
                self.n_fft,
                self.hop_length,
                self.win_length,
                self.window,
                center=True,
                pad_mode="reflect",
                return_complex=True,
            )
            power = spec.real.pow(2) + spec.imag.pow(2)  # [B, F, T']
            feats = torch.log(torch.matmul(self.mel, power) + self.log_floor)
            if self.mean_norm:
                feats = feats - feats.mean(dim=-1, keepdim=True)
        return feats


class Conv1dReluBn(nn.Sequential):
    """Conv1d (biased) -> ReLU -> BatchNorm1d, ``[B, C_in, T] -> [B, C_out, T]`` (same length)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv1d(in_channels, out_channels, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation),
            nn.ReLU(),
            nn.BatchNorm1d(out_channels),
        )


class Res2Conv1d(nn.Module):
    """Res2Net convolution: channels split into ``scale`` groups of ``C / scale``;
    ``y_1 = K_1(x_1)``, ``y_i = K_i(x_i + y_{i-1})`` for ``1 < i < scale``, ``y_scale = x_scale``
    (each ``K_i`` a dilated Conv1dReluBn). ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int) -> None:
        super().__init__()
        if channels % scale:
            raise ValueError(f"channels={channels} must be divisible by scale={scale}")
        self.width = channels // scale
        self.convs = nn.ModuleList(
            Conv1dReluBn(self.width, self.width, kernel_size, dilation) for _ in range(scale - 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = torch.split(x, self.width, dim=1)
        out, y = [], None
        for i, conv in enumerate(self.convs):
            y = conv(groups[i] if y is None else groups[i] + y)
            out.append(y)
        out.append(groups[-1])
        return torch.cat(out, dim=1)


class SqueezeExcitation(nn.Module):
    """``x * sigmoid(W2 relu(W1 mean_t(x)))`` with a ``bottleneck``-unit hidden layer."""

    def __init__(self, channels: int, bottleneck: int = 128) -> None:
        super().__init__()
        self.linear1 = nn.Linear(channels, bottleneck)
        self.linear2 = nn.Linear(bottleneck, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.linear2(torch.relu(self.linear1(x.mean(dim=-1)))))
        return x * s.unsqueeze(-1)


class SERes2Block(nn.Module):
    """``x + SE(Conv1x1(Res2(Conv1x1(x))))``, ``[B, C, T] -> [B, C, T]``."""

    def __init__(
        self, channels: int, kernel_size: int = 3, dilation: int = 1, scale: int = 8, se_bottleneck: int = 128
    ) -> None:
        super().__init__()
        self.conv1 = Conv1dReluBn(channels, channels, 1)
        self.res2 = Res2Conv1d(channels, kernel_size, dilation, scale)
        self.conv2 = Conv1dReluBn(channels, channels, 1)
        self.se = SqueezeExcitation(channels, se_bottleneck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.se(self.conv2(self.res2(self.conv1(x))))


class AttentiveStatsPooling(nn.Module):
    """Attentive statistics pooling with global context, ``[B, D, T] -> [B, 2D]``.

    ``h_t = [x_t; mean(x); std(x)]`` (``global_context``; else ``h_t = x_t``),
    ``a = softmax_t(W2 tanh(W1 h_t + b1) + b2)`` per channel,
    ``mu = sum_t a_t x_t``, ``sigma = sqrt(max(sum_t a_t x_t^2 - mu^2, eps))``; output ``[mu; sigma]``.
    """

    def __init__(self, in_dim: int, bottleneck: int = 128, global_context: bool = True, eps: float = 1e-7) -> None:
        super().__init__()
        self.global_context, self.eps = global_context, eps
        self.attention = nn.Sequential(
            nn.Conv1d(in_dim * (3 if global_context else 1), bottleneck, 1),
            nn.Tanh(),
            nn.Conv1d(bottleneck, in_dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.global_context:
            mean = x.mean(dim=-1, keepdim=True)
            std = torch.sqrt(x.var(dim=-1, keepdim=True, unbiased=False).clamp(min=self.eps))
            h = torch.cat([x, mean.expand_as(x), std.expand_as(x)], dim=1)
        alpha = torch.softmax(self.attention(h), dim=-1)
        mu = (alpha * x).sum(dim=-1)
        sigma = torch.sqrt(((alpha * x.pow(2)).sum(dim=-1) - mu.pow(2)).clamp(min=self.eps))
        return torch.cat([mu, sigma], dim=1)


@register_model("ecapa_tdnn")
class ECAPATDNN(nn.Module):
    """ECAPA-TDNN: waveform ``[B, T]`` / ``[B, 1, T]`` at 16 kHz -> speaker embedding ``[B, embed_dim]``.

    Args:
        channels: C, the width of the TDNN layers (1024 and 512 in the paper).
        embed_dim: embedding size (192).
        n_mels: filterbank bins (80); ``f_min``/``f_max``, ``n_fft``, ``win_length``, ``hop_length``
            and ``preemphasis`` go to :class:`Fbank`.
        mfa_channels: output channels of the multi-layer feature aggregation (1536 for both sizes).
        scale: Res2Net scale (8); ``dilations``: of the three SE-Res2Blocks (2, 3, 4).
        se_bottleneck, attention_bottleneck: hidden sizes of SE and attention (128, 128).
        global_context: context-dependent attentive pooling (True, the paper's).
        embed_bn: BatchNorm after the embedding Linear (True, the paper's Fig. 2).
    """

    task = "sv"
    sample_rate = 16000
    causal = False
    in_channels = 1

    def __init__(
        self,
        channels: int = 512,
        embed_dim: int = 192,
        n_mels: int = 80,
        mfa_channels: int = 1536,
        scale: int = 8,
        dilations: tuple[int, ...] | list[int] = (2, 3, 4),
        se_bottleneck: int = 128,
        attention_bottleneck: int = 128,
        global_context: bool = True,
        embed_bn: bool = True,
        f_min: float = 20.0,
        f_max: float = 7600.0,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        preemphasis: float = 0.97,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        if sample_rate != 16000:
            raise ValueError("ECAPA-TDNN here works at 16 kHz")
        if len(dilations) != 3:
            raise ValueError(f"need three dilations (one per SE-Res2Block), got {list(dilations)}")
        self.channels, self.embed_dim = channels, embed_dim
        self.frontend = Fbank(sample_rate, n_mels, n_fft, win_length, hop_length, f_min, f_max, preemphasis)
        self.layer1 = Conv1dReluBn(n_mels, channels, kernel_size=5)
        self.layer2 = SERes2Block(channels, 3, dilations[0], scale, se_bottleneck)
        self.layer3 = SERes2Block(channels, 3, dilations[1], scale, se_bottleneck)
        self.layer4 = SERes2Block(channels, 3, dilations[2], scale, se_bottleneck)
        self.mfa = nn.Sequential(nn.Conv1d(3 * channels, mfa_channels, 1), nn.ReLU())
        self.pooling = AttentiveStatsPooling(mfa_channels, attention_bottleneck, global_context)
        self.pool_bn = nn.BatchNorm1d(2 * mfa_channels)
        self.embedding = nn.Sequential(
            nn.Linear(2 * mfa_channels, embed_dim), *([nn.BatchNorm1d(embed_dim)] if embed_bn else [])
        )

    @property
    def hop_length(self) -> int:
        return self.frontend.hop_length

    def fbank(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` or ``[B, 1, T]`` -> ``[B, n_mels, T // hop + 1]`` (mean-normalised log mel)."""
        return self.frontend(wav)

    def frame_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Filterbank ``[B, n_mels, T']`` -> MFA frame features ``[B, mfa_channels, T']``."""
        out2 = self.layer2(self.layer1(feats))
        out3 = self.layer3(out2)
        out4 = self.layer4(out3)
        return self.mfa(torch.cat([out2, out3, out4], dim=1))

    def embed_fbank(self, feats: torch.Tensor) -> torch.Tensor:
        """Filterbank ``[B, n_mels, T']`` -> embedding ``[B, embed_dim]``."""
        return self.embedding(self.pool_bn(self.pooling(self.frame_features(feats))))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.embed_fbank(self.fbank(wav))

    def num_frames(self, num_samples: int) -> int:
        """Frames of the front end for ``num_samples`` samples (centred frames)."""
        return num_samples // self.hop_length + 1


__all__ = ["CONFIGS", "ECAPATDNN", "Fbank", "mel_filterbank", "hz_to_mel", "mel_to_hz"]
