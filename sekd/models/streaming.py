"""Frame-by-frame inference for causal DCCRN models: ``StreamingDCCRN``.

Feed ``hop`` samples at a time (``step``); each call returns ``hop`` enhanced samples. The
streamer keeps, per layer, what the next frame needs and nothing else:

- STFT: the last ``win_len - hop`` input samples (the offline STFT pads ``win_len - hop``
  zeros on the left, so the stream starts from zeros);
- every encoder and decoder layer: its previous input frame (their time kernels span two
  frames; a causal transposed convolution's output frame ``t`` is
  ``W0 x_t + W1 x_{t-1}``), batch norm in eval mode acting per frame;
- the LSTMs: their ``(h, c)``;
- inverse STFT: the overlap-add tail; the window-power normalisation is periodic in
  ``hop`` inside the signal, so each emitted sample is divided by its steady-state value.

Block ``t`` returned by ``step`` holds the samples that frame ``t`` completes: input
samples ``t*hop - (win_len - hop) ...``, i.e. the output lags the input by
``win_len - hop`` samples, and a sample is out ``win_len`` samples (one window) after it
went in: ``algorithmic_latency``. ``process`` runs a whole signal through the stream and
returns it aligned with the input; it equals ``model(x)`` to float precision (tested).
Only the causal DCCRN (``causal=True``, the default) streams: the official layout's
decoder looks one frame ahead per layer.
"""
from __future__ import annotations

import torch
from torch import nn

from sekd.models.complex_nn import ComplexLSTM, complex_cat
from sekd.models.dccrn import DCCRN, _RealRNN


class StreamingDCCRN:
    """``StreamingDCCRN(model).step(block [B, hop]) -> [B, hop]``; ``process(x [B, T]) -> [B, T]``."""

    def __init__(self, model: DCCRN) -> None:
        if not isinstance(model, DCCRN):
            raise TypeError(f"streaming needs a DCCRN, not {type(model).__name__}")
        if not model.causal:
            raise ValueError("this DCCRN looks ahead (causal=False): it cannot stream frame by frame")
        self.model = model.eval()
        stft = model.stft
        self.win, self.hop, self.n_fft = stft.win_len, stft.hop, stft.n_fft
        self.left = self.win - self.hop
        w2 = stft.window ** 2
        # Steady-state overlap-add normaliser, one value per position inside a hop.
        self.env = torch.stack([w2[j::self.hop].sum() for j in range(self.hop)])
        self.batch = None

    @property
    def algorithmic_latency(self) -> int:
        return self.win

    def reset(self, batch: int = 1) -> None:
        dtype = self.model.stft.window.dtype
        self.batch = batch
        self.in_buf = torch.zeros(batch, self.left, dtype=dtype)
        self.ola = torch.zeros(batch, self.win, dtype=dtype)
        self.enc_prev: list[torch.Tensor | None] = [None] * len(self.model.encoder)
        self.dec_prev: list[torch.Tensor | None] = [None] * len(self.model.decoder)
        self.rnn_state: dict[int, tuple] = {}

    @staticmethod
    def _frame_step(layer: nn.Module, prev: torch.Tensor | None, cur: torch.Tensor) -> torch.Tensor:
        """One output frame of a layer whose time kernel spans two frames."""
        prev = torch.zeros_like(cur) if prev is None else prev
        return layer(torch.cat([prev, cur], -1))[..., -1:]

    def _lstm(self, lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
        out, self.rnn_state[id(lstm)] = lstm(x, self.rnn_state.get(id(lstm)))
        return out

    def _rnn(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck on one frame ``[1, B, D]`` with carried state."""
        rnn = self.model.enhance
        if isinstance(rnn, _RealRNN):
            return rnn.linear(self._lstm(rnn.lstm, x))
        for layer in rnn:  # DCCRN-CL: complex LSTM layers, as ComplexLSTM.forward with state
            assert isinstance(layer, ComplexLSTM)
            xr, xi = torch.chunk(x, 2, -1)
            b = x.shape[1]
            both = torch.cat([xr, xi], 1)
            rr, ri = torch.split(self._lstm(layer.real_lstm, both), b, 1)
            ir, ii = torch.split(self._lstm(layer.imag_lstm, both), b, 1)
            real, imag = rr - ii, ri + ir
            if layer.projection_size:
                real, imag = (layer.real_linear(real) - layer.imag_linear(imag),
                              layer.real_linear(imag) + layer.imag_linear(real))
            x = torch.cat([real, imag], -1)
        return x

    @torch.no_grad()
    def step(self, block: torch.Tensor) -> torch.Tensor:
        """``hop`` new input samples ``[B, hop]`` -> the ``hop`` output samples they complete."""
        m = self.model
        if self.batch is None or block.shape[0] != self.batch:
            self.reset(block.shape[0])
        if block.shape[-1] != self.hop:
            raise ValueError(f"a step takes {self.hop} samples, got {block.shape[-1]}")
        frame = torch.cat([self.in_buf, block], -1)  # the last win_len samples
        self.in_buf = frame[:, self.hop:]
        spec = torch.fft.rfft(frame * m.stft.window, n=self.n_fft)[..., None]  # [B, F, 1]
        out = torch.stack([spec.real, spec.imag], 1)[:, :, 1:]  # [B, 2, F-1, 1]
        skips = []
        for i, layer in enumerate(m.encoder):
            out, self.enc_prev[i] = self._frame_step(layer, self.enc_prev[i], out), out
            skips.append(out)
        b, c, f, _ = out.shape
        out = self._rnn(out.permute(3, 0, 1, 2).reshape(1, b, c * f)).reshape(1, b, c, f).permute(1, 2, 3, 0)
        for i, (layer, skip) in enumerate(zip(m.decoder, reversed(skips))):
            x = complex_cat([out, skip])
            out, self.dec_prev[i] = self._frame_step(layer, self.dec_prev[i], x), x
        est = m.apply_mask(spec, out)
        frame_out = torch.fft.irfft(est[..., 0], n=self.n_fft)[..., :self.win] * m.stft.window
        self.ola = self.ola + frame_out
        done = self.ola[:, :self.hop] / self.env
        self.ola = torch.nn.functional.pad(self.ola[:, self.hop:], (0, self.hop))
        return done

    @torch.no_grad()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        """A whole signal ``[B, T]`` through the stream, aligned with the input: ``[B, T]``."""
        length = x.shape[-1]
        self.reset(x.shape[0])
        total = length + self.left  # the stream's output lags by `left` samples
        steps = -(-total // self.hop)
        x = torch.nn.functional.pad(x, (0, steps * self.hop - length))
        out = torch.cat([self.step(x[:, i * self.hop:(i + 1) * self.hop]) for i in range(steps)], -1)
        return out[:, self.left:self.left + length]
