"""MANNER: Multi-view Attention Network for Noise ERasure (Park et al., ICASSP 2022).

Layout follows the official code (github winddori2002/MANNER, ``src/models.py``,
``src/attention.py``, ``src/conv_modules.py``, ``src/chunk.py``, ``config.py``); the code
here is written anew from those facts.

Time-domain U-Net::

    x / (1e-3 + std(x))                     input normalisation (std over time of the
                                            channel mean, unbiased), undone at the end
    right-pad to a valid length             so every strided conv sees whole windows
    in_conv    Conv1d(C_in, N, 3) + BN + ReLU                     -> [B, N, T]   (kept for the mask)
    encoder.i  down   Conv1d(c, c, K, S) + BN + ReLU              c = N * 2**i
               resconv  residual conformer block c -> 2c
               attention  multi-view attention block on 2c        (MA block)
    bottleneck Linear(N 2**D, N 2**D, no bias) + ReLU over channels
    decoder.j  (x + skip) -> resconv 2c -> c -> up ConvTranspose1d(c, c, K, S) + BN + ReLU
               -> attention on c                                  (j = 0 is the deepest)
    mask       tanh(conv) * sigmoid(conv) -> conv + ReLU on N channels
    out_conv   Conv1d(N, 1, 3) applied to in_conv's output times the mask

Residual conformer block (``resconv``): 1x1 conv (c -> 2c) + BN + GLU, depthwise conv
(kernel 31) + BN + Swish, 1x1 conv (c -> c_out) + BN + Swish, 1x1 conv + BN; plus a
1x1 conv + BN shortcut; ReLU of the sum.

Multi-view attention block (``attention``), on ``c`` channels with ``m = c // 3``:
three 1x1 conv + BN + ReLU input branches (``branch_in.0/1/2``, ``c -> m``), then

- ``channel``: channel attention (CBAM-style): a shared MLP ``m -> m/2 -> m`` on the
  max- and average-pooled (over all time) features; sigmoid of the sum scales channels.
- ``global_``: the sequence is cut into 50 %-overlapping chunks of ``segment_len``
  frames (zero padding of one chunk at both ends, Asteroid's dual-path unfold); one
  scaled dot-product self-attention runs *across the P chunks*, each chunk's
  ``segment_len`` frames being its feature vector (no bias on Q/K/V/out projections),
  independently for every channel; overlap-add folds back.
- ``local``: the same chunks; a depthwise conv (kernel 31) + BN + Swish along the
  frames of each chunk, then max and mean over channels -> conv(2 -> 1, kernel 7) + BN
  -> sigmoid gives one weight per (chunk, frame), which scales the chunked input.

Each branch goes through a 3x3 conv + BN + ReLU (``branch_out.0/1/2``), the three are
concatenated, 1x1 conv + BN back to ``c`` channels, gated by ``tanh(conv)*sigmoid(conv)
-> conv + ReLU``, and added to a 1x1 conv + BN shortcut of the block input.

Attention maps of the three views (what MV-AT, Shin et al. 2022, arXiv 2208.10367,
transfers), each the output of an ``nn.Identity`` named ``map`` so that
``sekd.distill.taps.FeatureTaps`` can capture it by path:

- ``<stage>.attention.channel.map``: channel weights ``[B, m, 1]`` (after sigmoid);
- ``<stage>.attention.global_.map``: chunk-to-chunk attention ``[B, m, H, P, P]`` (after
  softmax; rows sum to one);
- ``<stage>.attention.local.map``: local weights ``[B, 1, P, segment_len]`` (after sigmoid).

The view *features* (each branch's output, width-dependent) are the outputs of
``<stage>.attention.branch_out.0`` (channel), ``.1`` (global), ``.2`` (local), all
``[B, m, T_stage]``. ``<stage>`` is ``encoder.<i>`` or ``decoder.<j>``; in ``attention=
"last"`` models (MANNER small) only ``encoder.<D-1>`` and ``decoder.0`` have one.

Official sizes (README / config.py): hidden N = 60, depth D = 4, K = 8, S = 4, growth 2,
one head, segment_len 64. MANNER (base) has an MA block in every encoder and decoder
layer: 24.07 M parameters; MANNER (small) has them in the deepest encoder and decoder
layer only (the commented code below the base model in ``src/models.py``): 21.25 M.
MV-AT's student MANNER-S-8.1GF (``manner_s_8.1gf``) is derived, not taken from the
paper (see ``CONFIGS``): hidden 15, depth 4, segment_len 32: 1.56 M parameters.
Convolution weights are rescaled at initialisation (``rescale_module``, reference 0.1,
as in Demucs). The official training objective is L1 + multi-resolution STFT loss.

Shapes: ``forward(x: [B, C, T] or [B, T]) -> [B, T]``. Non-causal (the global view, the
channel view's pooling and the input normalisation see the whole utterance): ``causal = False``,
``algorithmic_latency = -1``.
Submodules for feature taps: ``in_conv``, ``encoder.<i>`` (``.down``, ``.resconv``,
``.attention``), ``bottleneck``, ``decoder.<j>`` (``.resconv``, ``.up``, ``.attention``),
``mask``, ``out_conv``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sekd.models import register_model

# Paper-size configurations (constructor arguments of ``manner``).
CONFIGS = {
    # Park et al. 2022 / official config.py defaults: 24.07 M parameters.
    "manner_base": dict(hidden=60, depth=4, kernel_size=8, stride=4, head=1, segment_len=64, attention="all"),
    # MANNER (small): same widths, MA blocks only in the deepest encoder/decoder layer: 21.25 M.
    "manner_small": dict(hidden=60, depth=4, kernel_size=8, stride=4, head=1, segment_len=64, attention="last"),
    # MV-AT's student MANNER-S-8.1GF (Shin et al. 2022): the abstract gives 15.4x fewer
    # parameters and 4.71x fewer FLOPs than MANNER base; the paper's table of student
    # configurations was not available. Derived: hidden 15, depth 4 and chunk length 32
    # (the other settings official) give 1,564,809 parameters (24,068,671 / 15.38) and
    # 8.38 G MACs for a 4-s 16 kHz input (base: 38.38 G, ratio 4.58). That base / 4.71 =
    # 8.15 G fits the "8.1GF" name suggests the paper counts MACs of a 4-s input (the
    # official training crop); width and depth alone cannot meet both ratios (the shorter
    # chunks add global-attention MACs and remove parameters).
    "manner_s_8.1gf": dict(hidden=15, depth=4, kernel_size=8, stride=4, head=1, segment_len=32, attention="all"),
}


class _ConvBN(nn.Sequential):
    """Conv1d without bias + BatchNorm (momentum 0.01: ``MANNER(bn_momentum=)``) + optional ReLU (``BasicConv``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, padding: int = 0, relu: bool = True) -> None:
        layers = [nn.Conv1d(cin, cout, kernel_size, padding=padding, bias=False), nn.BatchNorm1d(cout, momentum=0.01)]
        if relu:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class ResConBlock(nn.Module):
    """Residual conformer block ``[B, c, T] -> [B, c_out, T]`` (``c_out = 2c`` or ``c/2``)."""

    def __init__(self, channels: int, out_channels: int, kernel_size: int = 31) -> None:
        super().__init__()
        self.pointwise1 = nn.Sequential(
            nn.Conv1d(channels, 2 * channels, 1), nn.BatchNorm1d(2 * channels), nn.GLU(dim=1)
        )
        self.depthwise = nn.Sequential(
            nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2, groups=channels, bias=False),
            nn.BatchNorm1d(channels),
            nn.SiLU(),
        )
        self.pointwise2 = nn.Sequential(nn.Conv1d(channels, out_channels, 1), nn.BatchNorm1d(out_channels), nn.SiLU())
        self.proj = _ConvBN(out_channels, out_channels, 1, relu=False)
        self.shortcut = _ConvBN(channels, out_channels, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.proj(self.pointwise2(self.depthwise(self.pointwise1(x))))
        return F.relu(out + self.shortcut(x))


class _Chunker:
    """50 %-overlapping chunks with one chunk of zero padding at both ends (Asteroid dual-path).

    With an even ``size`` (every config) both directions are reshapes of ``hop``-long blocks:
    chunk ``p`` is blocks ``p`` and ``p + 1``, and the overlap-add sums each chunk's first
    half with the previous chunk's second half. Odd sizes take ``F.unfold`` and a transposed
    convolution with an identity kernel (the same values). Neither needs an output size
    given as a number, so a traced model (``sekd-export``) follows the input length."""

    def __init__(self, size: int) -> None:
        self.size, self.hop = size, size // 2

    def unfold(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, m, T] -> [B, m, P, size]``, ``P = (T + size) // hop + 1`` (trailing samples
        that fill no whole chunk are dropped, as ``F.unfold`` drops them)."""
        b, m, length = x.shape
        size, hop = self.size, self.hop
        if size != 2 * hop:
            chunks = F.unfold(x.unsqueeze(-1), (size, 1), padding=(size, 0), stride=(hop, 1))
            return chunks.reshape(b, m, size, -1).transpose(2, 3)
        p = (length + size) // hop + 1
        x = F.pad(x, (size, (p + 1) * hop - length - size))  # (P + 1) whole blocks, then cut
        blocks = x[..., : (p + 1) * hop].reshape(b, m, p + 1, hop)
        return torch.cat([blocks[:, :, :-1], blocks[:, :, 1:]], -1)

    def fold(self, x: torch.Tensor, length: int) -> torch.Tensor:
        """``[B, m, P, size] -> [B, m, T]`` by overlap-add, divided by the overlap factor."""
        b, m, p, _ = x.shape
        size, hop = self.size, self.hop
        if size != 2 * hop:
            eye = torch.eye(size, dtype=x.dtype, device=x.device).unsqueeze(1)  # [size, 1, size]
            out = F.conv_transpose1d(x.reshape(b * m, p, size).transpose(1, 2), eye, stride=hop)
            return out[:, 0, size : size + length].reshape(b, m, -1) * (hop / size)
        blocks = F.pad(x[..., :hop], (0, 0, 0, 1)) + F.pad(x[..., hop:], (0, 0, 1, 0))  # [B, m, P + 1, hop]
        return blocks.reshape(b, m, -1)[..., size : size + length] * (hop / size)


class ChannelAttention(nn.Module):
    """Channel view: ``[B, m, T] -> [B, m, T]``; map ``[B, m, 1]`` at ``.map``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(1, channels // 2)  # the official C // 2; at least one unit for one-channel toy sizes
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))
        self.map = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc(x.amax(-1)) + self.fc(x.mean(-1))
        return x * self.map(torch.sigmoid(weights).unsqueeze(-1))


class GlobalAttention(nn.Module):
    """Global view: self-attention across chunks, ``[B, m, P, L] -> [B, m, P, L]``.

    As in the official code the model dimension is the chunk length ``L`` and each of the
    ``head`` heads has dimension ``L * head``. Map ``[B, m, head, P, P]`` at ``.map``; the
    map is computed and passed through ``.map`` only while a hook watches it (a KD tap), else
    the fused ``F.scaled_dot_product_attention`` runs (same output, no ``P x P`` tensor kept).
    """

    def __init__(self, segment_len: int, head: int = 1) -> None:
        super().__init__()
        self.head, self.d_k = head, segment_len * head
        inner = head * self.d_k
        self.query = nn.Linear(segment_len, inner, bias=False)
        self.key = nn.Linear(segment_len, inner, bias=False)
        self.value = nn.Linear(segment_len, inner, bias=False)
        self.out = nn.Linear(inner, segment_len, bias=False)
        self.map = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, m, p, _ = x.shape
        heads = lambda t: t.reshape(b, m, p, self.head, self.d_k).transpose(2, 3)  # noqa: E731
        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))  # [B, m, H, P, d_k]
        if self.map._forward_hooks or self.map._forward_pre_hooks:  # the map is tapped (MV-AT): write it out
            attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.d_k), dim=-1)
            out = self.map(attn) @ v  # [B, m, H, P, d_k]
        else:  # fused kernel: the [P, P] map (quadratic in the length) is never stored
            fused = lambda t: t.reshape(b * m, self.head, p, self.d_k)  # noqa: E731  (4-D: the flash CPU kernel)
            out = F.scaled_dot_product_attention(fused(q), fused(k), fused(v)).reshape(q.shape)
        return self.out(out.transpose(2, 3).reshape(b, m, p, self.head * self.d_k))


class LocalAttention(nn.Module):
    """Local view: per-frame weights inside each chunk, ``[B, m, P, L] -> [B, m, P, L]``.

    Map ``[B, 1, P, L]`` at ``.map``.
    """

    def __init__(self, channels: int, kernel_size: int = 31, map_kernel: int = 7) -> None:
        super().__init__()
        self.depthwise = nn.Sequential(
            nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2, groups=channels, bias=False),
            nn.BatchNorm1d(channels),
            nn.SiLU(),
        )
        self.conv = _ConvBN(2, 1, map_kernel, padding=(map_kernel - 1) // 2, relu=False)
        self.map = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, m, p, length = x.shape
        conv, norm, act = self.depthwise
        # The depthwise conv inside each chunk as one [L, L] banded (Toeplitz) matrix per
        # channel: on 32-frame chunks with a 31-tap kernel a matmul is several times faster
        # than the convolution kernel, and gives the same values.
        k, pad = conv.kernel_size[0], conv.padding[0]
        pos = torch.arange(length, device=x.device)
        tap = pos.unsqueeze(0) - pos.unsqueeze(1) + pad  # [t, s]: the weight index linking output t to input s
        band = conv.weight[:, 0][:, tap.clamp(0, k - 1)] * ((tap >= 0) & (tap < k)).to(x.dtype)  # [m, L, L]
        y = torch.einsum("bmpl,mtl->bpmt", x, band).reshape(b * p, m, length)
        y = act(norm(y))
        y = self.conv(torch.stack([y.amax(1), y.mean(1)], 1))  # [B*P, 1, L]
        weights = torch.sigmoid(y).reshape(b, p, 1, length).transpose(1, 2)  # [B, 1, P, L]
        return x * self.map(weights)


class MultiViewAttention(nn.Module):
    """MA block ``[B, c, T] -> [B, c, T]``: channel, global and local views on ``c // 3`` channels each."""

    def __init__(self, channels: int, segment_len: int, head: int) -> None:
        super().__init__()
        m = channels // 3
        self.chunker = _Chunker(segment_len)
        self.branch_in = nn.ModuleList(_ConvBN(channels, m, 1) for _ in range(3))
        self.channel = ChannelAttention(m)
        self.global_ = GlobalAttention(segment_len, head)
        self.local = LocalAttention(m)
        self.branch_out = nn.ModuleList(_ConvBN(m, m, 3, padding=1) for _ in range(3))
        self.merge = _ConvBN(3 * m, channels, 1, relu=False)
        self.shortcut = _ConvBN(channels, channels, 1, relu=False)
        self.gate_tanh = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.Tanh())
        self.gate_sigmoid = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.Sigmoid())
        self.gate_out = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-1]
        views = [
            self.channel(self.branch_in[0](x)),
            self.chunker.fold(self.global_(self.chunker.unfold(self.branch_in[1](x))), length),
            self.chunker.fold(self.local(self.chunker.unfold(self.branch_in[2](x))), length),
        ]
        out = self.merge(torch.cat([conv(v) for conv, v in zip(self.branch_out, views)], 1))
        return self.shortcut(x) + self.gate_out(self.gate_tanh(out) * self.gate_sigmoid(out))


class EncoderLayer(nn.Module):
    """``[B, c, T] -> [B, 2c, ~T/S]``: strided conv, residual conformer block, MA block."""

    def __init__(
        self, channels: int, kernel_size: int, stride: int, segment_len: int, head: int, attention: bool
    ) -> None:
        super().__init__()
        self.down = nn.Sequential(
            nn.Conv1d(channels, channels, kernel_size, stride), nn.BatchNorm1d(channels), nn.ReLU()
        )
        self.resconv = ResConBlock(channels, 2 * channels)
        self.attention = MultiViewAttention(2 * channels, segment_len, head) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resconv(self.down(x))
        return self.attention(x) if self.attention is not None else x


class DecoderLayer(nn.Module):
    """``[B, 2c, T] -> [B, c, ~T*S]``: residual conformer block, transposed conv, MA block."""

    def __init__(
        self, channels: int, kernel_size: int, stride: int, segment_len: int, head: int, attention: bool
    ) -> None:
        super().__init__()
        self.resconv = ResConBlock(2 * channels, channels)
        self.up = nn.Sequential(
            nn.ConvTranspose1d(channels, channels, kernel_size, stride), nn.BatchNorm1d(channels), nn.ReLU()
        )
        self.attention = MultiViewAttention(channels, segment_len, head) if attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(self.resconv(x))
        return self.attention(x) if self.attention is not None else x


class MaskGate(nn.Module):
    """``relu(conv(tanh(conv x) * sigmoid(conv x)))``: the mask on ``in_conv``'s output."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.tanh = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.Tanh())
        self.sigmoid = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.Sigmoid())
        self.out = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.tanh(x) * self.sigmoid(x))


def _rescale_conv_weights(module: nn.Module, reference: float) -> None:
    """Official ``rescale_module``: divide each conv's weight and bias by ``sqrt(std(w) / reference)``."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, (nn.Conv1d, nn.ConvTranspose1d)):
                scale = (sub.weight.std() / reference) ** 0.5
                sub.weight.div_(scale)
                if sub.bias is not None:
                    sub.bias.div_(scale)


@register_model("manner")
class MANNER(nn.Module):
    """MANNER with configurable width and depth.

    Args:
        hidden: channels N after ``in_conv``; encoder layer ``i`` maps ``N 2**i`` to
            ``N 2**(i+1)`` channels (official: 60; a multiple of 3 keeps the views even).
        depth: number of encoder (and decoder) layers (official: 4).
        kernel_size, stride: of the down/up-sampling convolutions (official: 8, 4).
        head: attention heads of the global view (official: 1).
        segment_len: chunk length of the global and local views (official: 64).
        attention: ``"all"`` (MANNER base: an MA block in every encoder and decoder layer)
            or ``"last"`` (MANNER small: only in the deepest encoder and decoder layer).
        rescale: reference std of the initial conv weights (official 0.1); ``None`` keeps
            PyTorch's default initialisation.
        eps: added to the input std before normalising (official 1e-3).
        bn_momentum: running-statistics momentum of the attention and conformer blocks'
            BatchNorms (official ``BasicConv``: 0.01, a time constant of ~100 steps, made for
            350 epochs). In a short run the running statistics lag the weights and the model in
            eval mode falls far below itself in train mode (mini MANNER after 120 steps: 1.6 vs
            8.7 dB SI-SNR on its training batch; 8.5 vs 8.7 with 0.1): short budgets set 0.1.
        in_channels: input channels; the official model is single-channel.
        sample_rate: 16 kHz as in the paper (Valentini / VoiceBank-DEMAND at 16 kHz).
    """

    causal = False
    algorithmic_latency = -1

    def __init__(
        self,
        hidden: int = 60,
        depth: int = 4,
        kernel_size: int = 8,
        stride: int = 4,
        head: int = 1,
        segment_len: int = 64,
        attention: str = "all",
        rescale: float | None = 0.1,
        eps: float = 1e-3,
        in_channels: int = 1,
        sample_rate: int = 16000,
        bn_momentum: float = 0.01,
    ) -> None:
        super().__init__()
        if attention not in ("all", "last"):
            raise ValueError(f"attention must be 'all' or 'last', not {attention!r}")
        if hidden < 3 or segment_len < 2 or depth < 1:
            raise ValueError("need hidden >= 3, segment_len >= 2 and depth >= 1")
        self.hidden, self.depth, self.kernel_size, self.stride = hidden, depth, kernel_size, stride
        self.eps, self.in_channels, self.sample_rate = eps, in_channels, sample_rate
        self.in_conv = nn.Sequential(nn.Conv1d(in_channels, hidden, 3, padding=1), nn.BatchNorm1d(hidden), nn.ReLU())
        has_attn = [attention == "all" or i == depth - 1 for i in range(depth)]
        self.encoder = nn.ModuleList(
            EncoderLayer(hidden * 2**i, kernel_size, stride, segment_len, head, has_attn[i]) for i in range(depth)
        )
        bottom = hidden * 2**depth
        self.bottleneck = nn.Sequential(nn.Linear(bottom, bottom, bias=False), nn.ReLU())
        self.decoder = nn.ModuleList(
            DecoderLayer(hidden * 2**i, kernel_size, stride, segment_len, head, has_attn[i])
            for i in reversed(range(depth))
        )
        self.mask = MaskGate(hidden)
        self.out_conv = nn.Conv1d(hidden, 1, 3, padding=1)
        if rescale is not None:
            _rescale_conv_weights(self, rescale)
        for block in self.modules():
            if isinstance(block, _ConvBN):
                block[1].momentum = bn_momentum

    def valid_length(self, length: int) -> int:
        """Smallest length >= ``length`` that the strided convolutions cover exactly."""
        for _ in range(self.depth):  # integer ceil, so torch.jit.trace follows the length
            length = max((length - self.kernel_size + self.stride - 1) // self.stride + 1, 1)
        for _ in range(self.depth):
            length = (length - 1) * self.stride + self.kernel_size
        return length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"MANNER expects {self.in_channels} input channel(s), got {x.shape[1]}")
        std = x.mean(1, keepdim=True).std(-1, keepdim=True)  # [B, 1, 1]
        x = x / (self.eps + std)
        length = x.shape[-1]
        x = F.pad(x, (0, self.valid_length(length) - length))
        x = self.in_conv(x)
        first = x
        skips = []
        for layer in self.encoder:
            x = layer(x)
            skips.append(x)
        x = self.bottleneck(x.transpose(1, 2)).transpose(1, 2)
        for layer, skip in zip(self.decoder, reversed(skips)):
            x = layer(x + skip[..., : x.shape[-1]])
        x = self.out_conv(first * self.mask(x))
        return (std * x[..., :length])[:, 0]
