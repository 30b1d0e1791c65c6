"""Uformer: a U-Net based dilated complex & real dual-path conformer (Fu et al., ICASSP 2022).

The teacher of Distil-DCCRN (Han et al., IEEE SPL 2024, arXiv 2408.04267). Layout follows
the current official code (github felixfuyihui/Uformer, ``uformer.py`` and the modules it
imports; the 2022-06-18 revision, which replaced local by global temporal attention and
dropped the encoder-decoder attention of the paper):

- STFT: window 400, hop 160, FFT 512, square-root Hann analysis and synthesis window.
  Input features are power-law compressed: ``|X|^0.5`` (magnitude branch) and
  ``|X|^0.5 e^{j angle X}`` (complex branch); the DC bin is dropped (256 bins remain).
- Two parallel U-Nets with encoder channels ``[1, 8, 16, 32, 64, 128, 128]`` (complex
  channels for the complex branch, real channels for the magnitude branch): conv kernel
  (5, 2) over (frequency, time), stride (2, 1), one frame of left context; BatchNorm
  (the complex branch shares the statistics of the real and imaginary parts:
  ``BatchNorm3d`` over ``[B, C, F, T, 2]``) and PReLU. Bottleneck: 4 bins x 128 channels.
- After every encoder layer, every conformer sub-block and every decoder layer the two
  branches exchange information (the official ``fusion``, no parameters):
  ``mag += sigmoid(|cplx|)``, ``cplx.real += sigmoid(mag)``, ``cplx.imag += sigmoid(mag)``
  (the complex update uses the magnitude before its own update).
- Dilated dual-path conformer at the bottleneck, one per branch: feed-forward (128 -> 64
  -> 128, half-step residual), global time self-attention, frequency self-attention
  (hidden 16; the complex branch runs 8 real attention heads over the (q, k, v) choices
  of real and imaginary inputs and combines them as a complex product), 8 dilated
  conv blocks (1x1 conv 128 -> 32, two (3, 3) convs with time dilations
  ``1, 2, ..., 128`` and ``128, ..., 1`` gating each other, LayerNorm, swish, 1x1 conv
  back to 128, residual), a second feed-forward and a final LayerNorm.
- Decoders: transposed conv (5, 2), stride (2, 1), input = [skip, previous] along
  channels, first ``T`` frames kept; BatchNorm + PReLU except on the last layer.
- Output: the magnitude branch gives a sigmoid mask on the compressed magnitude; the
  complex branch a polar mask (``tanh(|M|)`` on the compressed magnitude, phase of ``M``
  added to the noisy phase, as DCCRN-E). The two compressed magnitudes are averaged,
  the phase is the complex branch's, the magnitude is decompressed (squared), the DC
  bin is zero, and the inverse STFT gives the waveform.

The official model is not causal: the time attention is global and the dilated
convolutions are centred, so ``causal = False`` and ``algorithmic_latency = -1``.

Parameters: the official code prints 4,385,649, but 1,049,600 of them are its frozen
STFT/iSTFT kernels (two ``[1024, 1, 512]`` DFT matrices and two 512-sample windows,
``requires_grad=False``). The learnable count is 3,336,049, which this module matches
exactly (``OFFICIAL_STFT_KERNEL_PARAMS`` records the difference).
Loading the official weights into this module (parameter names mapped) and feeding
both the same STFT gives the same waveform to 7e-7 (eval mode, checked once by hand).

Deviations from the official code (none changes the parameter count):

- Complex tensors use this repo's layout ``[B, 2C, F, T]`` (real channels, then
  imaginary channels) instead of ``[B, C, F, T, 2]``, so ``encoder.<i>`` taps line up
  with DCCRN's; the encoder/decoder convs are ``complex_nn`` layers (normal(0, 0.05)
  init as in DCCRN; the official code keeps PyTorch's default init).
- The STFT is ``sekd.models.stft.STFT`` (frames padded so every input sample is
  reconstructed; the official one drops the tail that does not fill a 512-sample frame
  and centres the 400-sample window inside it, a pure delay).
- The mask phase is applied as a product of unit phasors instead of ``atan2`` + cos/sin
  (same value, no ``atan2`` gradient singularity).
- Dropout (p = 0.1) sits where the official code has it; it is configurable.

Shapes: ``forward(x: [B, 1, T] or [B, T]) -> [B, T]``.
Submodules for feature taps (complex outputs ``[B, 2C, F, N]``, real ``[B, C, F, N]``):
``encoder.<i>`` / ``encoder_real.<i>`` (before fusion), ``conformer`` (a tuple
``(complex, magnitude)`` at the bottleneck; its parts ``conformer.ff1_cplx``,
``conformer.tatt_cplx``, ``conformer.dsconv_cplx.<j>``, ... are tensors),
``decoder.<i>`` / ``decoder_real.<i>``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sekd.models import register_model
from sekd.models.complex_nn import ComplexConv2d, ComplexConvTranspose2d, complex_cat
from sekd.models.stft import STFT

EPS = torch.finfo(torch.float32).eps

# Paper-size configuration (constructor arguments of ``uformer``): official uformer.py.
CONFIGS = {
    "uformer": dict(
        channels=[8, 16, 32, 64, 128, 128],
        ff_hidden=64,
        attention_hidden=16,
        conv_hidden=32,
        dilations=[1, 2, 4, 8, 16, 32, 64, 128],
    ),
}

# Learnable parameters of the official model and the frozen STFT/iSTFT kernel entries its
# ``show_params`` adds to them (3,336,049 + 1,049,600 = 4,385,649, the "4.39 M").
OFFICIAL_LEARNABLE_PARAMS = 3_336_049
OFFICIAL_STFT_KERNEL_PARAMS = 2 * (1024 * 512 + 512)


# ---------------------------------------------------------------------------- helpers
# Complex tensors are ``[B, 2C, F, T]``; inside the conformer they are moved to a
# channel-last view ``[B, 2, F, T, C]`` (dim 1 = real/imaginary) for LayerNorm and
# linear layers over channels. Real and imaginary parts share every LayerNorm, as in
# the official code.


def _to_last(x: torch.Tensor) -> torch.Tensor:
    """``[B, 2C, F, T] -> [B, 2, F, T, C]``."""
    b, c2, f, t = x.shape
    return x.reshape(b, 2, c2 // 2, f, t).permute(0, 1, 3, 4, 2)


def _from_last(z: torch.Tensor) -> torch.Tensor:
    """``[B, 2, F, T, C] -> [B, 2C, F, T]``."""
    b, _, f, t, c = z.shape
    return z.permute(0, 1, 4, 2, 3).reshape(b, 2 * c, f, t)


def _fusion(cplx: torch.Tensor, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The official branch exchange: ``cplx [B, 2C, F, T]``, ``mag [B, C, F, T]``."""
    real, imag = torch.chunk(cplx, 2, 1)
    cplx_mag = (real.pow(2) + imag.pow(2)).clamp_min(EPS).sqrt()
    gate = torch.sigmoid(mag)
    return torch.cat([real + gate, imag + gate], 1), mag + torch.sigmoid(cplx_mag)


def _to_seq(x: torch.Tensor, axis: str) -> tuple[torch.Tensor, torch.Size]:
    """``[B, F, T, C]`` -> sequences ``[B*F, T, C]`` (time) or ``[B*T, F, C]`` (freq)."""
    if axis == "freq":
        x = x.transpose(1, 2)
    return x.reshape(-1, x.shape[-2], x.shape[-1]), x.shape


def _from_seq(y: torch.Tensor, shape: torch.Size, axis: str) -> torch.Tensor:
    y = y.reshape(*shape[:-1], y.shape[-1])
    return y.transpose(1, 2) if axis == "freq" else y


class _ComplexBatchNorm(nn.BatchNorm3d):
    """``BatchNorm3d(C)`` over ``[B, C, F, T, 2]`` (real and imaginary share statistics),
    applied to ``[B, 2C, F, T]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c2, f, t = x.shape
        y = x.reshape(b, 2, c2 // 2, f, t).transpose(1, 2)
        return super().forward(y).transpose(1, 2).reshape(b, c2, f, t)


class _CausalConv2d(nn.Conv2d):
    """Real conv over ``[B, C, F, T]`` with ``left`` frames of past context only."""

    def __init__(self, *args, left: int = 1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.left = left

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


class _TrimConvTranspose2d(nn.ConvTranspose2d):
    """Real transposed conv keeping the first ``T`` output frames (no look-ahead)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[..., : x.shape[-1]]


class _ComplexConv2d(nn.Module):
    """Complex conv with dilation and symmetric padding, ``[B, 2Cin, F, T] -> [B, 2Cout, F, T]``.

    Channel counts are real + imaginary, as in ``complex_nn``; PyTorch's default init.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size=(1, 1), dilation=(1, 1), padding=(0, 0)
    ) -> None:
        super().__init__()
        self.dilation, self.padding = tuple(dilation), tuple(padding)
        self.real_conv = nn.Conv2d(in_channels // 2, out_channels // 2, kernel_size, dilation=dilation)
        self.imag_conv = nn.Conv2d(in_channels // 2, out_channels // 2, kernel_size, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wr, wi = self.real_conv.weight, self.imag_conv.weight
        weight = torch.cat([torch.cat([wr, -wi], 1), torch.cat([wi, wr], 1)], 0)
        br, bi = self.real_conv.bias, self.imag_conv.bias
        return F.conv2d(x, weight, torch.cat([br - bi, br + bi]), padding=self.padding, dilation=self.dilation)


class _ComplexLinear(nn.Module):
    """Complex linear map on the last axis of ``[N, 2, ..., Cin]`` (dim 1 = real/imag)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.real_linear = nn.Linear(in_features, out_features)
        self.imag_linear = nn.Linear(in_features, out_features)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        zr, zi = z.unbind(1)
        return torch.stack(
            [self.real_linear(zr) - self.imag_linear(zi), self.real_linear(zi) + self.imag_linear(zr)], 1
        )


# -------------------------------------------------------------------- conformer parts


class _FeedForward(nn.Module):
    """LayerNorm -> linear C->H -> PReLU -> linear H->C, ``0.5 * y + x`` (complex or real)."""

    def __init__(self, channels: int, hidden: int, complex_valued: bool, dropout: float) -> None:
        super().__init__()
        self.complex_valued = complex_valued
        linear = _ComplexLinear if complex_valued else nn.Linear
        self.norm = nn.LayerNorm(channels)
        self.linear1 = linear(channels, hidden)
        self.prelu = nn.PReLU()
        self.linear2 = linear(hidden, channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _to_last(x) if self.complex_valued else x.permute(0, 2, 3, 1)
        y = self.dropout(self.prelu(self.linear1(self.norm(y))))
        y = self.dropout(self.linear2(y))
        y = _from_last(y) if self.complex_valued else y.permute(0, 3, 1, 2)
        return 0.5 * y + x


class _AttentionHead(nn.Module):
    """Single-head dot-product attention with its own q/k/v projections C -> H."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.query = nn.Linear(channels, hidden)
        self.key = nn.Linear(channels, hidden)
        self.value = nn.Linear(channels, hidden)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # softmax(q k^T / sqrt(H)) v; global (no mask) as in the official code.
        return F.scaled_dot_product_attention(self.query(q), self.key(k), self.value(v))


# (query, key, value) inputs of the 8 heads of complex attention; real output =
# h0 - h1 - h2 - h3, imaginary output = h4 + h5 + h6 - h7 (official Self_Attention_T/F).
_COMPLEX_HEADS = ("rrr", "rii", "iri", "iir", "rri", "rir", "irr", "iii")


class _AxisAttention(nn.Module):
    """Self-attention along time (``axis="time"``) or frequency (``axis="freq"``).

    LayerNorm -> attention (C -> H) -> LayerNorm(H) -> linear H -> C -> LayerNorm ->
    PReLU -> dropout -> residual. The complex version has 8 heads (``_COMPLEX_HEADS``).
    """

    def __init__(self, channels: int, hidden: int, axis: str, complex_valued: bool, dropout: float) -> None:
        super().__init__()
        self.axis, self.complex_valued = axis, complex_valued
        self.norm_in = nn.LayerNorm(channels)
        self.heads = nn.ModuleList(_AttentionHead(channels, hidden) for _ in range(8 if complex_valued else 1))
        self.norm_hidden = nn.LayerNorm(hidden)
        self.transform = (_ComplexLinear if complex_valued else nn.Linear)(hidden, channels)
        self.norm_out = nn.LayerNorm(channels)
        self.prelu = nn.PReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.complex_valued:
            seq, shape = _to_seq(self.norm_in(x.permute(0, 2, 3, 1)), self.axis)
            y = self.transform(self.norm_hidden(self.heads[0](seq, seq, seq)))
            y = self.dropout(self.prelu(self.norm_out(_from_seq(y, shape, self.axis))))
            return x + y.permute(0, 3, 1, 2)
        z = self.norm_in(_to_last(x))  # [B, 2, F, T, C]
        (zr, shape), (zi, _) = _to_seq(z[:, 0], self.axis), _to_seq(z[:, 1], self.axis)
        parts = {"r": zr, "i": zi}
        h = [head(parts[q], parts[k], parts[v]) for head, (q, k, v) in zip(self.heads, _COMPLEX_HEADS)]
        y = torch.stack([h[0] - h[1] - h[2] - h[3], h[4] + h[5] + h[6] - h[7]], 1)  # [N, 2, L, H]
        y = self.transform(self.norm_hidden(y))  # [N, 2, L, C]
        y = torch.stack([_from_seq(y[:, 0], shape, self.axis), _from_seq(y[:, 1], shape, self.axis)], 1)
        y = self.dropout(self.prelu(self.norm_out(y)))
        return x + _from_last(y)


class _DilatedConvBlock(nn.Module):
    """LayerNorm -> 1x1 conv C->H -> PReLU -> dconv1(y) * sigmoid(dconv2(y)) -> LayerNorm
    -> swish -> 1x1 conv H->C -> dropout -> residual. ``dconv*``: (3, 3) kernels, time
    dilations ``d1`` and ``d2``, centred (non-causal) padding."""

    def __init__(self, channels: int, hidden: int, d1: int, d2: int, complex_valued: bool, dropout: float) -> None:
        super().__init__()
        self.complex_valued = complex_valued
        k = 2 if complex_valued else 1

        def conv(cin, cout, kernel=(1, 1), dilation=1):
            pad = ((kernel[0] - 1) // 2, dilation * (kernel[1] - 1) // 2)
            if complex_valued:
                return _ComplexConv2d(k * cin, k * cout, kernel, (1, dilation), pad)
            return nn.Conv2d(cin, cout, kernel, dilation=(1, dilation), padding=pad)

        self.norm_in = nn.LayerNorm(channels)
        self.conv1x1 = conv(channels, hidden)
        self.prelu = nn.PReLU()
        self.dconv1 = conv(hidden, hidden, (3, 3), d1)
        self.dconv2 = conv(hidden, hidden, (3, 3), d2)
        self.norm_mid = nn.LayerNorm(hidden)
        self.sconv = conv(hidden, channels)
        self.dropout = nn.Dropout(dropout)

    def _norm(self, norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
        if self.complex_valued:
            return _from_last(norm(_to_last(x)))
        return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.prelu(self.conv1x1(self._norm(self.norm_in, x)))
        y = self.dconv1(y) * torch.sigmoid(self.dconv2(y))
        y = self._norm(self.norm_mid, y)
        y = self.dropout(self.sconv(y * torch.sigmoid(y)))
        return x + y


class _DualPathConformer(nn.Module):
    """The dilated complex & real dual-path conformer: ``(cplx [B, 2C, F, T], mag [B, C, F, T])``
    -> same shapes; the branches are fused after every sub-block but the final norms."""

    def __init__(
        self,
        channels: int,
        ff_hidden: int,
        attention_hidden: int,
        conv_hidden: int,
        dilations: list[int],
        dropout: float,
    ) -> None:
        super().__init__()
        c, d = channels, dropout
        self.ff1_cplx = _FeedForward(c, ff_hidden, True, d)
        self.ff1_mag = _FeedForward(c, ff_hidden, False, d)
        self.tatt_cplx = _AxisAttention(c, attention_hidden, "time", True, d)
        self.tatt_mag = _AxisAttention(c, attention_hidden, "time", False, d)
        self.fatt_cplx = _AxisAttention(c, attention_hidden, "freq", True, d)
        self.fatt_mag = _AxisAttention(c, attention_hidden, "freq", False, d)
        pairs = list(zip(dilations, reversed(dilations)))
        self.dsconv_cplx = nn.ModuleList(_DilatedConvBlock(c, conv_hidden, a, b, True, d) for a, b in pairs)
        self.dsconv_mag = nn.ModuleList(_DilatedConvBlock(c, conv_hidden, a, b, False, d) for a, b in pairs)
        self.ff2_cplx = _FeedForward(c, ff_hidden, True, d)
        self.ff2_mag = _FeedForward(c, ff_hidden, False, d)
        self.norm_cplx = nn.LayerNorm(c)
        self.norm_mag = nn.LayerNorm(c)

    def forward(self, cplx: torch.Tensor, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        steps = [
            (self.ff1_cplx, self.ff1_mag),
            (self.tatt_cplx, self.tatt_mag),
            (self.fatt_cplx, self.fatt_mag),
            *zip(self.dsconv_cplx, self.dsconv_mag),
            (self.ff2_cplx, self.ff2_mag),
        ]
        for block_c, block_m in steps:
            cplx, mag = _fusion(block_c(cplx), block_m(mag))
        cplx = _from_last(self.norm_cplx(_to_last(cplx)))
        mag = self.norm_mag(mag.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return cplx, mag


# ------------------------------------------------------------------------------ model


@register_model("uformer")
class Uformer(nn.Module):
    """Uformer with configurable widths (defaults = the official model, 3,336,049 parameters).

    Args:
        channels: encoder output channels after the 1-channel input (complex channels for
            the complex branch, real channels for the magnitude branch); official
            ``[8, 16, 32, 64, 128, 128]``. ``(n_fft/2) / 2**len(channels)`` bins remain.
        ff_hidden: hidden size of the conformer feed-forward blocks (64).
        attention_hidden: q/k/v size of the time and frequency attention (16).
        conv_hidden: channels inside the dilated conv blocks (32).
        dilations: time dilations of the first conv of each dilated block; the second
            uses them reversed (official ``[1, 2, ..., 128]``, 8 blocks).
        win_len, hop, n_fft: STFT (400, 160, 512).
        kernel_size: frequency kernel of the (k, 2) encoder/decoder convolutions (5).
        dropout: dropout probability inside the conformer (0.1).
    """

    causal = False

    def __init__(
        self,
        channels: list[int] | tuple[int, ...] = (8, 16, 32, 64, 128, 128),
        ff_hidden: int = 64,
        attention_hidden: int = 16,
        conv_hidden: int = 32,
        dilations: list[int] | tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128),
        win_len: int = 400,
        hop: int = 160,
        n_fft: int = 512,
        kernel_size: int = 5,
        dropout: float = 0.1,
        sample_rate: int = 16000,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if in_channels != 1:
            raise ValueError("Uformer is single-channel here (in_channels=1)")
        bins = n_fft // 2
        if bins % (2 ** len(channels)):
            raise ValueError(f"n_fft/2={bins} must be divisible by 2**{len(channels)} (one halving per layer)")
        self.sample_rate, self.in_channels = sample_rate, in_channels
        self.stft = STFT(win_len, hop, n_fft, window="sqrt_hann")
        chans = [1] + list(channels)
        n = len(channels)
        pad_f = kernel_size // 2
        kernel, stride = (kernel_size, 2), (2, 1)
        self.encoder = nn.ModuleList(
            nn.Sequential(
                ComplexConv2d(2 * chans[i], 2 * chans[i + 1], kernel, stride, (pad_f, 1)),
                _ComplexBatchNorm(chans[i + 1]),
                nn.PReLU(),
            )
            for i in range(n)
        )
        self.encoder_real = nn.ModuleList(
            nn.Sequential(
                _CausalConv2d(chans[i], chans[i + 1], kernel, stride, (pad_f, 0), left=1),
                nn.BatchNorm2d(chans[i + 1]),
                nn.PReLU(),
            )
            for i in range(n)
        )
        self.conformer = _DualPathConformer(
            chans[-1], ff_hidden, attention_hidden, conv_hidden, list(dilations), dropout
        )
        decoder, decoder_real = [], []
        for i in range(n, 0, -1):
            cplx = [
                ComplexConvTranspose2d(4 * chans[i], 2 * chans[i - 1], kernel, stride, (pad_f, 0), (1, 0), causal=True)
            ]
            real = [_TrimConvTranspose2d(2 * chans[i], chans[i - 1], kernel, stride, (pad_f, 0), (1, 0))]
            if i != 1:
                cplx += [_ComplexBatchNorm(chans[i - 1]), nn.PReLU()]
                real += [nn.BatchNorm2d(chans[i - 1]), nn.PReLU()]
            decoder.append(nn.Sequential(*cplx))
            decoder_real.append(nn.Sequential(*real))
        self.decoder = nn.ModuleList(decoder)
        self.decoder_real = nn.ModuleList(decoder_real)

    @property
    def algorithmic_latency(self) -> int:
        """-1: global time attention and centred dilated convolutions see the future."""
        return -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            if x.shape[1] != 1:
                raise ValueError(f"Uformer expects one input channel, got {x.shape[1]}")
            x = x[:, 0]
        length = x.shape[-1]
        spec = self.stft(x)  # [B, F, N] complex
        power = (spec.real.pow(2) + spec.imag.pow(2)).clamp_min(EPS)
        phasor = spec / power.sqrt()  # e^{j angle X}
        mag_in = power.pow(0.25)  # compressed magnitude |X|^0.5
        cplx_in = mag_in * phasor
        cplx = torch.stack([cplx_in.real, cplx_in.imag], 1)[:, :, 1:]  # [B, 2, F-1, N]
        mag = mag_in[:, None, 1:]  # [B, 1, F-1, N]

        skips = []
        for enc_c, enc_m in zip(self.encoder, self.encoder_real):
            cplx, mag = _fusion(enc_c(cplx), enc_m(mag))
            skips.append((cplx, mag))
        cplx, mag = self.conformer(cplx, mag)
        for dec_c, dec_m, (skip_c, skip_m) in zip(self.decoder, self.decoder_real, reversed(skips)):
            cplx, mag = _fusion(dec_c(complex_cat([skip_c, cplx])), dec_m(torch.cat([skip_m, mag], 1)))

        # Magnitude branch: sigmoid mask. Complex branch: tanh-bounded polar mask.
        mask_mag = F.pad(torch.sigmoid(mag[:, 0]), (0, 0, 1, 0))  # DC bin: 0
        mr, mi = cplx[:, 0], cplx[:, 1]
        m_abs = (mr.pow(2) + mi.pow(2)).clamp_min(EPS).sqrt()
        mask_abs = F.pad(torch.tanh(m_abs + EPS), (0, 0, 1, 0))
        mask_phasor = F.pad(torch.complex(mr, mi) / (m_abs + EPS), (0, 0, 1, 0))
        est_mag = 0.5 * (mask_abs + mask_mag) * mag_in  # compressed, averaged over branches
        est = est_mag.pow(2) * phasor * mask_phasor
        return self.stft.inverse(est, length)
