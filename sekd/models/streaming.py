"""Frame-by-frame inference for causal models: ``StreamingDCCRN``, ``StreamingDPDCRN``.

Feed ``hop`` samples at a time (``step``); each call returns ``hop`` enhanced samples. With
``frames=N`` (``streamer(model, N)``, ``sekd-enhance --stream_frames N``) a step takes and
returns ``N`` hops and runs the model once on ``N`` frames: the same output, ``N - 1`` hops more
latency, the per-call overhead (every layer is a separate PyTorch call) shared by ``N`` frames.
A streamer keeps, per layer, what the next frame needs and nothing else. Common to both
(``_FrameStreamer``):

- STFT: the last ``win_len - hop`` input samples of every channel (the offline STFT pads
  ``win_len - hop`` zeros on the left, so the stream starts from zeros);
- inverse STFT: the overlap-add tail; the window-power normalisation is periodic in
  ``hop`` inside the signal, so each emitted sample is divided by its steady-state value.

Block ``t`` returned by ``step`` holds the samples that frame ``t`` completes: input
samples ``t*hop - (win_len - hop) ...``, i.e. the output lags the input by
``win_len - hop`` samples, and a sample is out ``win_len`` samples (one window) after it
went in: ``algorithmic_latency``. ``process`` runs a whole signal through the stream and
returns it aligned with the input; it equals ``model(x)`` to float precision (tested).

Per model, the state a frame needs:

- DCCRN: every encoder and decoder layer's previous input frame (their time kernels span
  two frames; a causal transposed convolution's output frame ``t`` is
  ``W0 x_t + W1 x_{t-1}``), batch norm in eval mode acting per frame; the LSTMs' ``(h, c)``.
- DPDCRN: each dilated dense layer ``i`` the last ``2**i`` frames of its input (its kernel
  joins frames ``t - 2**i`` and ``t``); each time-path layer of each dual-path block the
  keys and values of every past frame (the causal time attention attends to all of them,
  as offline: a KV cache, so the cost of a frame grows with the stream's length) and its
  GRU state; everything else (the (1, 3) convs, per-frame norms, the frequency path)
  works within a frame.

Only causal models stream (``causal=True``, the default of both): the official layouts
look ahead (DCCRN's decoder one frame per layer, DPDCRN's utterance-level norms and
unmasked time attention).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from sekd.models.complex_nn import ComplexLSTM, complex_cat
from sekd.models.dccrn import DCCRN, _RealRNN
from sekd.models.dpdcrn import DPDCRN, _DilatedDense, _PathLayer


class _FrameStreamer:
    """STFT framing and overlap-add around a model step on ``frames`` frames (``_frames``)."""

    def __init__(self, model: nn.Module, frames: int = 1) -> None:
        if not model.causal:
            raise ValueError(f"this {type(model).__name__} looks ahead (causal=False): it cannot stream frame by frame")
        if frames < 1:
            raise ValueError(f"frames per step must be >= 1, not {frames}")
        self.model = model.eval()
        stft = model.stft
        self.win, self.hop, self.n_fft = stft.win_len, stft.hop, stft.n_fft
        self.frames = frames
        self.block = frames * self.hop  # samples per step
        self.left = self.win - self.hop
        self.channels = int(getattr(model, "in_channels", 1))
        w2 = stft.window**2
        # Steady-state overlap-add normaliser, one value per position inside a hop.
        self.env = torch.stack([w2[j :: self.hop].sum() for j in range(self.hop)]).repeat(frames)
        self.batch = None

    @property
    def algorithmic_latency(self) -> int:
        """One window, plus the ``frames - 1`` hops a step waits for before it runs."""
        return self.win + (self.frames - 1) * self.hop

    def reset(self, batch: int = 1) -> None:
        dtype = self.model.stft.window.dtype
        self.batch = batch
        self.in_buf = torch.zeros(batch, self.channels, self.left, dtype=dtype)
        self.ola = torch.zeros(batch, self.left, dtype=dtype)  # the overlap-add tail still to complete
        self._reset_model_state()

    def _reset_model_state(self) -> None:
        raise NotImplementedError

    def _frames(self, spec: torch.Tensor) -> torch.Tensor:
        """``k`` frames' spectra ``[B, C, F, k]`` (complex) -> the enhanced spectra ``[B, F, k]``."""
        raise NotImplementedError

    @torch.no_grad()
    def step(self, block: torch.Tensor) -> torch.Tensor:
        """``frames * hop`` new samples ``[B, n]`` (or ``[B, C, n]``) -> the ``n`` output samples they complete."""
        if block.dim() == 2:
            block = block[:, None]
        if self.batch is None or block.shape[0] != self.batch:
            self.reset(block.shape[0])
        if block.shape[-1] != self.block or block.shape[1] != self.channels:
            raise ValueError(f"a step takes [B, {self.channels}, {self.block}] samples, got {list(block.shape)}")
        samples = torch.cat([self.in_buf, block], -1)  # the last win_len + (k - 1) hops
        self.in_buf = samples[..., self.block :]
        frames = samples.unfold(-1, self.win, self.hop)  # [B, C, k, win]
        spec = torch.fft.rfft(frames * self.model.stft.window, n=self.n_fft).transpose(-1, -2)  # [B, C, F, k]
        est = self._frames(spec).transpose(-1, -2)  # [B, k, F]
        frames_out = torch.fft.irfft(est, n=self.n_fft)[..., : self.win] * self.model.stft.window  # [B, k, win]
        ola = F.pad(self.ola, (0, self.block))  # [B, win + (k - 1) hop]
        for j in range(self.frames):
            ola[:, j * self.hop : j * self.hop + self.win] += frames_out[:, j]
        self.ola = ola[:, self.block :]
        return ola[:, : self.block] / self.env

    @torch.no_grad()
    def process(self, x: torch.Tensor) -> torch.Tensor:
        """A whole signal ``[B, T]`` (or ``[B, C, T]``) through the stream, aligned with the input: ``[B, T]``."""
        if x.dim() == 2:
            x = x[:, None]
        length = x.shape[-1]
        self.reset(x.shape[0])
        total = length + self.left  # the stream's output lags by `left` samples
        steps = -(-total // self.block)
        x = F.pad(x, (0, steps * self.block - length))
        out = torch.cat([self.step(x[..., i * self.block : (i + 1) * self.block]) for i in range(steps)], -1)
        return out[:, self.left : self.left + length]


class StreamingDCCRN(_FrameStreamer):
    """``StreamingDCCRN(model, frames).step(block [B, frames * hop]) -> [B, frames * hop]``;
    ``process(x [B, T]) -> [B, T]``."""

    def __init__(self, model: DCCRN, frames: int = 1) -> None:
        if not isinstance(model, DCCRN):
            raise TypeError(f"StreamingDCCRN needs a DCCRN, not {type(model).__name__}")
        super().__init__(model, frames)

    def _reset_model_state(self) -> None:
        self.enc_prev: list[torch.Tensor | None] = [None] * len(self.model.encoder)
        self.dec_prev: list[torch.Tensor | None] = [None] * len(self.model.decoder)
        self.rnn_state: dict[int, tuple] = {}

    @staticmethod
    def _frame_step(layer: nn.Module, prev: torch.Tensor | None, cur: torch.Tensor) -> torch.Tensor:
        """The output frames of ``cur`` (``k`` frames) of a layer whose time kernel spans two
        frames, ``prev`` being the frame before them."""
        prev = torch.zeros_like(cur[..., -1:]) if prev is None else prev
        return layer(torch.cat([prev, cur], -1))[..., -cur.shape[-1] :]

    def _lstm(self, lstm: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
        out, self.rnn_state[id(lstm)] = lstm(x, self.rnn_state.get(id(lstm)))
        return out

    def _rnn(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck on ``k`` frames ``[k, B, D]`` with carried state."""
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
                real, imag = (
                    layer.real_linear(real) - layer.imag_linear(imag),
                    layer.real_linear(imag) + layer.imag_linear(real),
                )
            x = torch.cat([real, imag], -1)
        return x

    def _frames(self, spec: torch.Tensor) -> torch.Tensor:
        m = self.model
        spec = spec[:, 0]  # [B, F, k]
        out = torch.stack([spec.real, spec.imag], 1)[:, :, 1:]  # [B, 2, F-1, k]
        skips = []
        for i, layer in enumerate(m.encoder):
            out, self.enc_prev[i] = self._frame_step(layer, self.enc_prev[i], out), out[..., -1:]
            skips.append(out)
        b, c, f, k = out.shape
        out = self._rnn(out.permute(3, 0, 1, 2).reshape(k, b, c * f)).reshape(k, b, c, f).permute(1, 2, 3, 0)
        for i, (layer, skip) in enumerate(zip(m.decoder, reversed(skips))):
            x = complex_cat([out, skip])
            out, self.dec_prev[i] = self._frame_step(layer, self.dec_prev[i], x), x[..., -1:]
        return m.apply_mask(spec, out)


class StreamingDPDCRN(_FrameStreamer):
    """``StreamingDPDCRN(model, frames).step(block [B, C, frames * hop]) -> [B, frames * hop]``;
    ``process(x [B, C, T]) -> [B, T]``."""

    def __init__(self, model: DPDCRN, frames: int = 1) -> None:
        if not isinstance(model, DPDCRN):
            raise TypeError(f"StreamingDPDCRN needs a DPDCRN, not {type(model).__name__}")
        super().__init__(model, frames)

    def _reset_model_state(self) -> None:
        self.dense_past: dict[int, torch.Tensor] = {}  # id(layer) -> its last 2**i input frames
        self.kv: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(time path layer) -> keys, values
        self.gru_state: dict[int, torch.Tensor] = {}

    def _dense(self, block: _DilatedDense, x: torch.Tensor) -> torch.Tensor:
        """``k`` frames ``[B, C, k, F]`` of a dilated dense block (its offline forward, frames at a time)."""
        skip, out = x, x
        for i, layer in enumerate(block.layers):
            _, conv, norm, act = layer
            past = self.dense_past.get(id(layer))
            if past is None:  # the offline zero padding of the first 2**i frames
                past = torch.zeros(*skip.shape[:2], 2**i, skip.shape[-1], dtype=skip.dtype)
            both = torch.cat([past, skip], 2)  # frames t - 2**i .. t for each of the k frames
            out = act(norm(F.conv2d(F.pad(both, (1, 1, 0, 0)), conv.weight, conv.bias, dilation=(2**i, 1))))
            self.dense_past[id(layer)] = both[:, :, -(2**i) :]
            if i + 1 < len(block.layers):
                skip = torch.cat([out, skip], 1)
        return out

    def _time_path(self, layer: _PathLayer, x: torch.Tensor) -> torch.Tensor:
        """``k`` frames ``[N, k, d]`` of a causal time-path layer, with its KV cache and GRU state."""
        attn = layer.attn
        n, k, d = x.shape
        heads = attn.num_heads
        q, key, v = F.linear(layer.norm_in(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1)
        q, key, v = (t.reshape(n, k, heads, d // heads).transpose(1, 2) for t in (q, key, v))
        if id(layer) in self.kv:
            past_k, past_v = self.kv[id(layer)]
            key, v = torch.cat([past_k, key], 2), torch.cat([past_v, v], 2)
        self.kv[id(layer)] = (key, v)
        scores = q @ key.transpose(-1, -2) / math.sqrt(d // heads)  # [N, heads, k, past + k]
        if k > 1:  # frame j of the step sees the past and frames 0..j of the step
            future = torch.ones(k, k, dtype=torch.bool).triu(1)
            scores[..., -k:] = scores[..., -k:].masked_fill(future, float("-inf"))
        out = attn.out_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(n, k, d))
        x = layer.norm_attn(x + out)
        r, self.gru_state[id(layer)] = layer.gru(x, self.gru_state.get(id(layer)))
        return layer.norm_out(x + layer.linear(F.relu(r)))

    def _dual_path(self, x: torch.Tensor) -> torch.Tensor:
        dp = self.model.dual_path
        h = dp.input(x)
        out = x
        for block in dp.blocks:
            b, d, t, f = h.shape
            fr = block.freq(h.permute(0, 2, 3, 1).reshape(b * t, f, d))
            fr = block.freq_norm(fr.reshape(b, t, f, d).permute(0, 3, 1, 2))
            tm = self._time_path(block.time, h.permute(0, 3, 2, 1).reshape(b * f, t, d))
            tm = block.time_norm(tm.reshape(b, f, t, d).permute(0, 3, 2, 1))
            h = h + dp.k1 * fr + dp.k2 * tm
            out = dp.output(h)
        return out

    def _frames(self, spec: torch.Tensor) -> torch.Tensor:
        m = self.model
        out = torch.stack([spec.real, spec.imag], 2).flatten(1, 2).transpose(-1, -2)  # [B, 2C, k, F]
        for layer in m.encoder:
            out = self._dense(layer, out) if isinstance(layer, _DilatedDense) else layer(out)
        out = self._dual_path(out)
        for layer in m.decoder:
            out = self._dense(layer, out) if isinstance(layer, _DilatedDense) else layer(out)
        mask = torch.complex(out[:, 0], out[:, 1]).transpose(-1, -2)  # [B, F, k]
        mag = mask.abs()
        return spec[:, 0] * (torch.tanh(mag) / (mag + 1e-8)) * mask


def streamer(model: nn.Module, frames: int = 1) -> _FrameStreamer:
    """The streamer of a causal model (DCCRN or DPDCRN), ``frames`` STFT frames per step."""
    for kind, cls in ((DCCRN, StreamingDCCRN), (DPDCRN, StreamingDPDCRN)):
        if isinstance(model, kind):
            return cls(model, frames)
    raise TypeError(f"{type(model).__name__} has no frame-by-frame streaming (DCCRN and DPDCRN do)")
