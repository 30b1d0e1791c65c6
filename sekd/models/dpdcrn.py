"""DPDCRN: dual-path dilated convolutional recurrent network (Cheng et al.).

The backbone of I2RF-TFCKD / I2SRF-TFCKD (Cheng et al. 2025, arXiv 2506.13127), ranked
first in the L3DAS23 speech-enhancement track. Layout follows the official code
(github JMCheng-SEU/I2RF-TFCKD-SE, ``DPDCRN.py``: ``DPDCRN_Tea`` / ``DPDCRN_Stu_M``):

- input: STFT with FFT 512 (257 bins) as ``[B, 2, T, 257]`` real/imag planes (here
  ``2 * in_channels`` planes, channel ``c`` giving planes ``2c`` (real) and ``2c+1`` (imag));
- encoder (``DenseEncoder_Res``): ``encoder.0`` Conv2d(2C_in -> C, kernel (1, 3) over
  (time, frequency), stride (1, 2), padding (0, 1)) 257 -> 129 bins; ``encoder.1``
  Conv2d(C -> C, (1, 3), stride (1, 2), no padding) 129 -> 64 bins; each followed by an
  affine instance norm and a per-channel PReLU; ``encoder.2`` a dilated dense block
  (``DilatedDenseNet``: depth 4, kernel (2, 3), time dilations 1, 2, 4, 8 with left
  (causal) zero padding in time, dense concatenation so layer ``i`` sees ``C * (i + 1)``
  channels, norm + PReLU after every conv; the block returns the last layer's output);
- dual-path stage (``AIA_Transformer_Res`` / ``AIA_Transformer_onelayer``): 1x1 conv
  C -> C/2 + PReLU; then ``num_blocks`` blocks, each running, from the same input, a
  frequency path (sequence over the 64 bins of one frame) and a time path (sequence
  over frames of one bin). Both paths are the official "TransformerEncoderLayer":
  pre-LayerNorm -> 4-head self-attention -> residual -> LayerNorm -> GRU (hidden
  ``2 * d``; bidirectional on the frequency path, unidirectional on the time path) ->
  ReLU -> Linear back to ``d`` -> residual -> LayerNorm; each path is followed by a
  one-group norm, and the block output is ``x + k1 * freq + k2 * time`` (``k1``, ``k2``
  learnable scalars shared by all blocks). One shared readout (PReLU + 1x1 conv C/2 -> C)
  is applied after every block: the last readout feeds the decoder, all of them are the
  "middle" features distilled by I2RF-TFCKD (tappable here as ``dual_path.mid.<i>``);
- decoder (``ComplexDecoder_Res_new``): ``decoder.0`` dilated dense block,
  ``decoder.1`` ConvTranspose2d(C -> C, (1, 3), stride (1, 2)) 64 -> 129 bins + norm +
  PReLU, ``decoder.2`` ConvTranspose2d(C -> 2, (1, 3), stride (1, 2)) 129 -> 259 bins,
  the last two bins dropped -> 257;
- polar mask (as DCCRN-E): ``est = X_ref * tanh(|M|) * M / |M|``, i.e. magnitude
  ``tanh(|M|) |X|`` and phase ``angle(X) + angle(M)``, on the reference channel 0.

Teacher: C = 128, 4 dual-path blocks (3.22 M parameters); student: C = 64, one block
(0.60 M). ``CONFIGS`` has both; a test checks the counts.

Not in the official file: the STFT settings (the training script is not published).
Defaults here are a 512-sample periodic Hann window, hop 256 (32 ms / 16 ms at 16 kHz),
FFT 512, through the frame-causal :class:`sekd.models.stft.STFT`.

Causality. The official model is not causal in time in three places, all of which the
default ``causal=True`` replaces (parameter counts are unchanged):

1. ``nn.InstanceNorm2d`` in the encoder, the dense blocks and the decoder normalises
   over the whole utterance's time x frequency plane -> here each frame is normalised
   over frequency only, per channel (same affine weight and bias per channel);
2. ``nn.GroupNorm(1, C/2)`` after each path normalises over channels x time x
   frequency -> here over channels x frequency of each frame;
3. the time-path self-attention has no mask, so every frame attends to future frames
   -> here it gets a causal (lower-triangular) mask.

The GRU of the time path is already unidirectional, the dense blocks pad in time on
the left only, and every other kernel spans one frame, so with these changes the
network is strictly frame-causal and its algorithmic latency is the STFT window
(``win_len`` samples). ``causal=False`` restores the official utterance-level norms and
unmasked attention.

Shapes: ``forward(x: [B, C_in, T] or [B, T]) -> [B, T]``.
Submodules for feature taps: ``encoder.<0..2>`` (``[B, C, N, 129]``, ``[B, C, N, 64]``,
``[B, C, N, 64]``), ``dual_path`` (the last readout, ``[B, C, N, 64]``),
``dual_path.mid.<i>`` (readout after block ``i``, ``[B, C, N, 64]``),
``dual_path.blocks.<i>`` (the block's ``C/2``-channel state), ``decoder.<0..2>``
(``[B, C, N, 64]``, ``[B, C, N, 129]``, ``[B, 2, N, 257]``); ``N`` frames.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from sekd.models import register_model
from sekd.models.stft import STFT

# Paper-size configurations (constructor arguments of ``dpdcrn``).
CONFIGS = {
    # official DPDCRN_Tea: DenseEncoder_Res(128), AIA_Transformer_Res(128, 128, num_layers=4)
    # (not causal, as the official model: utterance-level norms, unmasked time attention)
    "dpdcrn_teacher": dict(channels=128, num_blocks=4, causal=False),
    # official DPDCRN_Stu_M: DenseEncoder_Res(64), AIA_Transformer_onelayer(64, 64)
    "dpdcrn_student": dict(channels=64, num_blocks=1, causal=False),
    # the student's causal variant, for streaming (sekd.models.streaming): same parameters
    "dpdcrn_student_causal": dict(channels=64, num_blocks=1, causal=True),
}


class _FrameNorm(nn.Module):
    """Per-frame normalisation of ``[B, C, T, F]`` with a per-channel affine map.

    ``over_channels=False``: statistics over frequency, per channel (causal stand-in for
    ``InstanceNorm2d``); ``True``: over channels and frequency (for ``GroupNorm(1, C)``).
    """

    def __init__(self, channels: int, over_channels: bool = False, eps: float = 1e-5) -> None:
        super().__init__()
        self.over_channels, self.eps = over_channels, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Layer norm written out (biased variance, as F.layer_norm): its shape argument would
        # come from the input's size, which ONNX export cannot take as a constant.
        dims = (1, 3) if self.over_channels else (3,)  # [B, C, T, F]: (C, F) or F, per frame
        mean = x.mean(dims, keepdim=True)
        var = (x - mean).pow(2).mean(dims, keepdim=True)
        y = (x - mean) / torch.sqrt(var + self.eps)
        return y * self.weight[:, None, None] + self.bias[:, None, None]


def _norm(channels: int, causal: bool) -> nn.Module:
    """The official ``InstanceNorm2d(affine=True)``, or its per-frame causal stand-in."""
    return _FrameNorm(channels) if causal else nn.InstanceNorm2d(channels, affine=True)


def _group_norm(channels: int, causal: bool) -> nn.Module:
    """The official ``GroupNorm(1, C, eps=1e-8)``, or its per-frame causal stand-in."""
    return _FrameNorm(channels, over_channels=True, eps=1e-8) if causal else nn.GroupNorm(1, channels, eps=1e-8)


class _DilatedDense(nn.Module):
    """Dilated dense block: ``depth`` convs, kernel (2, 3), time dilation ``2**i``.

    Layer ``i`` takes the concatenation of all previous outputs and the input
    (``C * (i + 1)`` channels); the time axis is zero-padded on the left only.
    ``[B, C, T, F] -> [B, C, T, F]`` (the last layer's output).

    The left padding is the convolution's own zero padding of ``2**i`` frames on both sides,
    the ``2**i`` outputs that see the right padding dropped: the same values as padding the
    input on the left (``ConstantPad2d``), without copying the growing input into a padded
    one (a third less time per block on one CPU thread). Layer ``i`` is
    ``Sequential(Identity, Conv2d, norm, PReLU)``: the first slot keeps the parameter names.
    """

    def __init__(self, channels: int, depth: int = 4, causal: bool = True) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.Identity(),  # was the input padding; the conv pads now
                nn.Conv2d(channels * (i + 1), channels, (2, 3), dilation=(2**i, 1), padding=(2**i, 1)),
                _norm(channels, causal),
                nn.PReLU(channels),
            )
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x
        out = x
        frames = x.shape[2]
        for i, layer in enumerate(self.layers):
            _, conv, norm, act = layer
            out = act(norm(conv(skip)[:, :, :frames]))  # the first T outputs: left-padded, causal
            if i + 1 < len(self.layers):
                skip = torch.cat([out, skip], 1)
        return out


class _PathLayer(nn.Module):
    """The official dual-path "TransformerEncoderLayer" over ``[N, L, d]`` sequences.

    pre-LN -> multi-head self-attention (``mask_future``: causal mask) -> residual -> LN
    -> GRU(d, 2d, bidirectional?) -> ReLU -> Linear -> residual -> LN.
    """

    def __init__(self, d: int, heads: int = 4, bidirectional: bool = True, mask_future: bool = False) -> None:
        super().__init__()
        self.mask_future = mask_future
        self.norm_in = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm_attn = nn.LayerNorm(d)
        self.gru = nn.GRU(d, 2 * d, batch_first=True, bidirectional=bidirectional)
        self.linear = nn.Linear(2 * d * (2 if bidirectional else 1), d)
        self.norm_out = nn.LayerNorm(d)

    def _attention(self, h: torch.Tensor) -> torch.Tensor:
        """``self.attn(h, h, h)`` written out with its weights (same values), so that ONNX export
        keeps the sequence length dynamic (the exporter fixes it inside nn.MultiheadAttention).
        Outside export the product is PyTorch's fused ``scaled_dot_product_attention``: the same
        values (1e-7), without the ``[N, heads, L, L]`` score tensors: a training step of the mini
        DPDCRN student (2 s crops, one thread) takes 0.44 s of CPU instead of 1.18 s."""
        attn = self.attn
        n, length, d = h.shape
        heads = attn.num_heads
        q, k, v = F.linear(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1)
        q, k, v = (t.reshape(n, length, heads, d // heads).transpose(1, 2) for t in (q, k, v))
        if not torch.onnx.is_in_onnx_export():
            out = F.scaled_dot_product_attention(q, k, v, is_causal=self.mask_future)
            return attn.out_proj(out.transpose(1, 2).reshape(n, length, d))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // heads)
        if self.mask_future:
            future = torch.ones(length, length, dtype=torch.bool, device=h.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, length, d)
        return attn.out_proj(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm_in(x)
        x = self.norm_attn(x + self._attention(h))
        r = self.gru(x)[0]
        return self.norm_out(x + self.linear(F.relu(r)))


class _DualPathBlock(nn.Module):
    """Frequency path (bidirectional, within a frame) and time path (causal) in parallel.

    ``[B, d, T, F] -> [B, d, T, F]``: ``x + k1 * norm(freq(x)) + k2 * norm(time(x))``;
    ``k1``, ``k2`` are owned by the enclosing :class:`_DualPath` (shared by all blocks).
    """

    def __init__(self, d: int, causal: bool = True) -> None:
        super().__init__()
        self.freq = _PathLayer(d, bidirectional=True)
        self.time = _PathLayer(d, bidirectional=False, mask_future=causal)
        self.freq_norm = _group_norm(d, causal)
        self.time_norm = _group_norm(d, causal)

    def forward(self, x: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor) -> torch.Tensor:
        b, d, t, f = x.shape
        fr = self.freq(x.permute(0, 2, 3, 1).reshape(b * t, f, d))  # sequences over frequency
        fr = self.freq_norm(fr.reshape(b, t, f, d).permute(0, 3, 1, 2))
        tm = self.time(x.permute(0, 3, 2, 1).reshape(b * f, t, d))  # sequences over time
        tm = self.time_norm(tm.reshape(b, f, t, d).permute(0, 3, 2, 1))
        return x + k1 * fr + k2 * tm


class _DualPath(nn.Module):
    """1x1 conv C -> C/2 + PReLU, ``num_blocks`` dual-path blocks, shared readout C/2 -> C."""

    def __init__(self, channels: int, num_blocks: int, causal: bool = True) -> None:
        super().__init__()
        if channels % 2 or (channels // 2) % 4:
            raise ValueError(f"channels ({channels}) must be a multiple of 8 (C/2 split over 4 heads)")
        d = channels // 2
        self.k1 = nn.Parameter(torch.ones(1))
        self.k2 = nn.Parameter(torch.ones(1))
        self.input = nn.Sequential(nn.Conv2d(channels, d, 1), nn.PReLU())
        self.blocks = nn.ModuleList(_DualPathBlock(d, causal) for _ in range(num_blocks))
        self.output = nn.Sequential(nn.PReLU(), nn.Conv2d(d, channels, 1))
        # parameter-free taps for the per-block readouts (the official ``output_list``)
        self.mid = nn.ModuleList(nn.Identity() for _ in range(num_blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x)
        out = x
        for block, tap in zip(self.blocks, self.mid):
            h = block(h, self.k1, self.k2)
            out = tap(self.output(h))
        return out


class _LastDeconv(nn.Module):
    """ConvTranspose2d(C -> 2, (1, 3), stride (1, 2)), dropping the last two bins (259 -> 257)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(channels, 2, (1, 3), (1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)[..., :-2]


@register_model("dpdcrn")
class DPDCRN(nn.Module):
    """DPDCRN with configurable width and number of dual-path blocks.

    Args:
        channels: encoder/decoder channels ``C`` (teacher 128, student 64); the dual-path
            stage works on ``C / 2``, which must split over 4 attention heads.
        num_blocks: dual-path blocks (teacher 4, student 1).
        in_channels: input microphones/channels; the first conv takes ``2 * in_channels``
            real/imag planes, the mask is applied to channel 0.
        win_len, hop, n_fft: STFT settings in samples; ``n_fft`` must be 512 (the encoder
            strides turn 257 bins into 64 and the decoder back into 257).
        causal: True (default): per-frame norms and a causally masked time attention;
            False: the official utterance-level norms and unmasked attention.
        sample_rate: sampling rate the model is meant for (metadata).
    """

    causal: bool

    def __init__(
        self,
        channels: int = 64,
        num_blocks: int = 1,
        in_channels: int = 1,
        win_len: int = 512,
        hop: int = 256,
        n_fft: int = 512,
        causal: bool = True,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        if n_fft != 512:
            raise ValueError(f"DPDCRN's encoder/decoder strides need n_fft=512 (257 bins), not {n_fft}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, not {in_channels}")
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, not {num_blocks}")
        self.causal, self.sample_rate, self.in_channels = causal, sample_rate, in_channels
        self.stft = STFT(win_len, hop, n_fft)
        self.encoder = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Conv2d(2 * in_channels, channels, (1, 3), (1, 2), (0, 1)),
                    _norm(channels, causal),
                    nn.PReLU(channels),
                ),  # 257 -> 129
                nn.Sequential(
                    nn.Conv2d(channels, channels, (1, 3), (1, 2)), _norm(channels, causal), nn.PReLU(channels)
                ),  # 129 -> 64
                _DilatedDense(channels, 4, causal),
            ]
        )
        self.dual_path = _DualPath(channels, num_blocks, causal)
        self.decoder = nn.ModuleList(
            [
                _DilatedDense(channels, 4, causal),
                nn.Sequential(
                    nn.ConvTranspose2d(channels, channels, (1, 3), (1, 2)), _norm(channels, causal), nn.PReLU(channels)
                ),  # 64 -> 129
                _LastDeconv(channels),  # 129 -> 257
            ]
        )

    @property
    def algorithmic_latency(self) -> int:
        """Samples of look-ahead plus frame buffering: the STFT window length."""
        return self.stft.win_len if self.causal else -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x[:, None]
        b, c, length = x.shape
        if c != self.in_channels:
            raise ValueError(f"DPDCRN built for {self.in_channels} input channel(s), got {c}")
        spec = self.stft(x.reshape(b * c, length))  # [B*C, F, N] complex
        spec = spec.reshape(b, c, *spec.shape[-2:]).transpose(-1, -2)  # [B, C, N, F]
        feats = torch.stack([spec.real, spec.imag], 2).flatten(1, 2)  # [B, 2C, N, F]
        out = feats
        for layer in self.encoder:
            out = layer(out)
        out = self.dual_path(out)
        for layer in self.decoder:
            out = layer(out)
        mask = torch.complex(out[:, 0], out[:, 1])  # [B, N, F]
        mag = mask.abs()
        est = spec[:, 0] * (torch.tanh(mag) / (mag + 1e-8)) * mask
        return self.stft.inverse(est.transpose(-1, -2), length)
