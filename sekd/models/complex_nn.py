"""Complex-valued layers of DCCRN (Hu et al., Interspeech 2020).

A complex tensor is stored as real channels followed by imaginary channels along
dim 1, as in the official code: ``[B, 2*C, F, T]`` holds ``C`` complex channels.
Each complex layer keeps two real weight sets (``real_*`` and ``imag_*``) and runs
them as one real convolution with the block weight ``[[Wr, -Wi], [Wi, Wr]]``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def complex_cat(xs: list[torch.Tensor], dim: int = 1) -> torch.Tensor:
    """Concatenate complex tensors: real parts first, then imaginary parts."""
    reals, imags = zip(*(torch.chunk(x, 2, dim) for x in xs))
    return torch.cat(list(reals) + list(imags), dim)


class ComplexConv2d(nn.Module):
    """Complex 2-D convolution over ``[B, 2*Cin, F, T]`` (frequency, time).

    The time axis is padded ``padding[1]`` frames on the left (the official code's
    choice), so the output has as many frames as the input and sees no future frame.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size=(5, 2), stride=(2, 1), padding=(2, 1)) -> None:
        super().__init__()
        if in_channels % 2 or out_channels % 2:
            raise ValueError("complex layers need even channel counts (real + imaginary halves)")
        self.stride, self.padding = tuple(stride), tuple(padding)
        self.real_conv = nn.Conv2d(in_channels // 2, out_channels // 2, kernel_size, stride)
        self.imag_conv = nn.Conv2d(in_channels // 2, out_channels // 2, kernel_size, stride)
        for conv in (self.real_conv, self.imag_conv):
            nn.init.normal_(conv.weight, std=0.05)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pt = self.padding[1]
        x = F.pad(x, (pt, 0))
        wr, wi = self.real_conv.weight, self.imag_conv.weight
        weight = torch.cat([torch.cat([wr, -wi], 1), torch.cat([wi, wr], 1)], 0)
        br, bi = self.real_conv.bias, self.imag_conv.bias
        bias = torch.cat([br - bi, br + bi])
        return F.conv2d(x, weight, bias, self.stride, (self.padding[0], 0))


class ComplexConvTranspose2d(nn.Module):
    """Complex 2-D transposed convolution over ``[B, 2*Cin, F, T]``.

    With a time kernel of ``k`` and stride 1 the output has ``T + k - 1`` frames; a
    causal layer keeps the first ``T`` (each output frame sees only past inputs); a
    non-causal one keeps frames ``[k-1:]`` as the official DCCRN code does (``k - 1``
    frames of look-ahead per layer).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=(5, 2),
        stride=(2, 1),
        padding=(2, 0),
        output_padding=(1, 0),
        causal: bool = True,
    ) -> None:
        super().__init__()
        if in_channels % 2 or out_channels % 2:
            raise ValueError("complex layers need even channel counts (real + imaginary halves)")
        self.stride, self.padding = tuple(stride), tuple(padding)
        self.output_padding, self.causal = tuple(output_padding), causal
        args = (in_channels // 2, out_channels // 2, kernel_size, stride)
        self.real_conv = nn.ConvTranspose2d(*args)
        self.imag_conv = nn.ConvTranspose2d(*args)
        for conv in (self.real_conv, self.imag_conv):
            nn.init.normal_(conv.weight, std=0.05)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1]
        wr, wi = self.real_conv.weight, self.imag_conv.weight  # [Cin, Cout, kf, kt]
        weight = torch.cat([torch.cat([wr, wi], 1), torch.cat([-wi, wr], 1)], 0)
        br, bi = self.real_conv.bias, self.imag_conv.bias
        bias = torch.cat([br - bi, br + bi])
        out = F.conv_transpose2d(x, weight, bias, self.stride, self.padding, self.output_padding)
        if self.causal:
            return out[..., :frames]
        return out[..., out.shape[-1] - frames :]


class ComplexLSTM(nn.Module):
    """One layer of DCCRN's complex LSTM, ``[T, B, 2*D] -> [T, B, 2*H or 2*P]``.

    ``real = LSTM_r(x_r) - LSTM_i(x_i)``, ``imag = LSTM_r(x_i) + LSTM_i(x_r)``, then an
    optional complex linear projection to ``P`` (the official NavieComplexLSTM).
    Sizes are complex sizes: ``input_size`` and ``hidden_size`` count real + imaginary.
    """

    def __init__(self, input_size: int, hidden_size: int, projection_size: int | None = None) -> None:
        super().__init__()
        self.real_lstm = nn.LSTM(input_size // 2, hidden_size // 2)
        self.imag_lstm = nn.LSTM(input_size // 2, hidden_size // 2)
        self.projection_size = projection_size
        if projection_size:
            self.real_linear = nn.Linear(hidden_size // 2, projection_size // 2)
            self.imag_linear = nn.Linear(hidden_size // 2, projection_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xr, xi = torch.chunk(x, 2, -1)
        batch = x.shape[1]
        # Run each LSTM once on [x_r; x_i] stacked along the batch axis.
        both = torch.cat([xr, xi], 1)
        rr, ri = torch.split(self.real_lstm(both)[0], batch, 1)  # LSTM_r(x_r), LSTM_r(x_i)
        ir, ii = torch.split(self.imag_lstm(both)[0], batch, 1)  # LSTM_i(x_r), LSTM_i(x_i)
        real, imag = rr - ii, ri + ir
        if self.projection_size:
            real, imag = (
                self.real_linear(real) - self.imag_linear(imag),
                self.real_linear(imag) + self.imag_linear(real),
            )
        return torch.cat([real, imag], -1)
