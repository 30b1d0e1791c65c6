"""Run a trained model on audio of any length and sample rate: ``Enhancer``.

``Enhancer.from_path(path)`` takes a checkpoint (``best.pt``), a packed model
(``sekd-pack``'s zip) or an ONNX / TorchScript export (``sekd-export``, ONNX run by
onnxruntime); ``sekd.load_pretrained`` is the same. Then

- ``enhancer(audio [C, T] or [T], rate) -> [T]`` at ``rate``;
- ``enhancer.enhance_file(src, dst)`` streams a file through the model: it is read in
  blocks, resampled to the model's rate and back with soxr's streaming resampler, enhanced
  in chunks of ``chunk_seconds`` that overlap by ``overlap_seconds`` and are cross-faded
  (``sin^2`` / ``cos^2``, which sum to one), and written as it goes, so memory does not grow
  with the file's length. The output is written to a temporary file and renamed.

Input holding NaN or Inf samples is refused (``DataError``), and so is a model that is not
for speech enhancement (``task`` other than ``"enh"``, e.g. an ECAPA-TDNN speaker model).

Chunking changes nothing for signals shorter than one chunk. Longer ones differ from a
whole-signal pass only in what a model with an infinite receptive field (an LSTM)
would have carried across the chunk boundary.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import soundfile as sf
import torch

from sekd.data import DataError
from sekd.data.audio import check_finite


def _is_torchscript(path: Path) -> bool:
    if not (path.is_file() and zipfile.is_zipfile(path)):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("extra/sekd.json") for n in z.namelist())


class Enhancer:
    """A model, its sample rate and channel count, and chunked, resampled inference."""

    def __init__(
        self,
        model: torch.nn.Module,
        sample_rate: int,
        channels: int,
        info: dict | None = None,
        streaming: int | bool = False,
    ) -> None:
        """``streaming``: 0 / False chunks the input; ``n`` (True = 1) streams it, ``n`` STFT frames
        per step with the state carried (causal DCCRN and DPDCRN): ``n - 1`` hops more latency,
        less per-step overhead."""
        self.model = model.eval()
        self.sample_rate, self.channels, self.info = int(sample_rate), int(channels), info or {}
        self.streamer = None
        if streaming:  # frame-by-frame state instead of chunks (causal DCCRN and DPDCRN)
            from sekd.models.streaming import streamer

            self.streamer = streamer(model, int(streaming))
        # The shortest input the model takes: two STFT windows, or 0.1 s.
        win_len = getattr(getattr(model, "stft", None), "win_len", None) or self.info.get("win_len") or 0
        self.min_length = max(2 * int(win_len), self.sample_rate // 10)

    @classmethod
    def from_path(cls, path: str | Path, streaming: int | bool = False) -> "Enhancer":
        """A checkpoint, a packed model (``sekd-pack``) or a TorchScript export (``sekd-export``)."""
        from sekd.train.checkpoint import build_from_checkpoint, load_checkpoint

        if Path(path).suffix == ".onnx":
            if streaming:
                raise ValueError(f"{path}: an ONNX export does not stream; use the checkpoint")
            model = OnnxModel(path)
            return cls(model, model.meta["sample_rate"], model.meta["channels"], model.meta)
        if _is_torchscript(Path(path)):
            extra = {"sekd.json": ""}
            model = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
            meta = json.loads(extra["sekd.json"])
            if streaming:
                raise ValueError(f"{path}: a TorchScript export does not stream; use the checkpoint")
            return cls(model, meta["sample_rate"], meta["channels"], meta)
        ckpt = load_checkpoint(path)
        model = build_from_checkpoint(ckpt, path)
        task = getattr(model, "task", "enh")
        if task != "enh":
            kind, hint = (
                ("speaker-verification", "; extract its embeddings with sekd.bin.extract_embeddings")
                if task == "sv"
                else (repr(task), "")
            )
            raise ValueError(
                f"{path}: {type(model).__name__} is a {kind} model (task {task!r}), not a speech-enhancement one{hint}"
            )
        data = (ckpt.get("config") or {}).get("data", {})
        rate = data.get("sample_rate") or getattr(model, "sample_rate", 16000)
        channels = data.get("channels") or getattr(model, "in_channels", 1)
        info = {k: v for k, v in ckpt.items() if k not in ("state_dict", "trainer")}
        return cls(model, rate, channels, info, streaming)

    # -- core ------------------------------------------------------------------------------
    def _run(self, seg: np.ndarray) -> np.ndarray:
        """Model on one chunk ``[C, n]`` at the model's rate -> ``[n]``."""
        n = seg.shape[-1]
        if n < self.min_length:
            seg = np.pad(seg, ((0, 0), (0, self.min_length - n)))
        with torch.no_grad():
            out = self.model(torch.from_numpy(np.ascontiguousarray(seg, dtype=np.float32))[None])
        return out.reshape(-1)[:n].numpy()

    def _check_channels(self, channels: int, where: str) -> None:
        if channels != self.channels:
            raise DataError(
                where,
                f"{channels} channel(s), the model takes {self.channels}"
                + (" (pick one with --channel)" if self.channels == 1 else ""),
            )

    def stream(self, blocks: Iterable[np.ndarray], chunk: int, overlap: int) -> Iterator[np.ndarray]:
        """Enhance a stream of ``[C, n]`` blocks at the model's rate; yields ``[m]`` pieces whose
        concatenation is as long as the input."""
        if self.streamer is not None:
            yield from self._stream_frames(blocks)
            return
        if not 0 <= overlap < chunk:
            raise ValueError(f"overlap ({overlap}) must be in [0, chunk = {chunk})")
        ramp = np.sin(0.5 * np.pi * (np.arange(overlap) + 0.5) / max(overlap, 1)) ** 2
        buf = np.zeros((self.channels, 0), dtype=np.float32)
        tail = None
        for block in blocks:
            buf = np.concatenate([buf, block], axis=1)
            while buf.shape[1] >= chunk:
                out = self._run(buf[:, :chunk])
                if tail is not None and overlap:
                    out[:overlap] = tail * (1 - ramp) + out[:overlap] * ramp
                yield out[: chunk - overlap]
                tail = out[chunk - overlap :]
                buf = buf[:, chunk - overlap :]
        if buf.shape[1] == 0:
            return
        out = self._run(buf)
        if tail is not None and overlap:
            out[:overlap] = tail * (1 - ramp) + out[:overlap] * ramp
        yield out

    def _stream_frames(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The streaming model, ``frames * hop`` samples a step, state carried across blocks; the
        output's lag (``win_len - hop`` samples) is removed so it lines up with the input."""
        s = self.streamer
        s.reset(1)

        def run(samples: np.ndarray) -> np.ndarray:  # [C, n * block] -> [n * block]
            return np.concatenate(
                [
                    s.step(torch.from_numpy(samples[:, i : i + s.block])[None])[0].numpy()
                    for i in range(0, samples.shape[1], s.block)
                ]
            )

        buf, skip, total, emitted = np.zeros((self.channels, 0), np.float32), s.left, 0, 0
        for block in blocks:
            buf = np.concatenate([buf, np.asarray(block, np.float32)], axis=1)
            total += block.shape[1]
            n = buf.shape[1] // s.block * s.block
            if n:
                out, buf = run(buf[:, :n]), buf[:, n:]
                out, skip = out[skip:], max(skip - len(out), 0)
                emitted += len(out)
                if len(out):
                    yield out
        # Flush with zeros until every input sample has come out.
        steps = -(-(total - emitted + skip) // s.block)
        if steps > 0:
            pending = np.pad(buf, ((0, 0), (0, steps * s.block - buf.shape[1])))
            yield run(pending)[skip : skip + total - emitted]

    def __call__(
        self, audio: np.ndarray, rate: int | None = None, chunk_seconds: float = 30.0, overlap_seconds: float = 1.0
    ) -> np.ndarray:
        """Enhance an array ``[T]`` or ``[C, T]`` sampled at ``rate`` (default: the model's)."""
        from sekd.data.audio import resample

        rate = rate or self.sample_rate
        audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
        self._check_channels(audio.shape[0], "input array")
        check_finite(audio, "input array")
        x = resample(audio, rate, self.sample_rate)
        chunk, overlap = self._chunking(chunk_seconds, overlap_seconds)
        out = np.concatenate(list(self.stream([x], chunk, overlap)))
        out = resample(out, self.sample_rate, rate)
        return _fit(out, audio.shape[-1])

    def _chunking(self, chunk_seconds: float, overlap_seconds: float) -> tuple[int, int]:
        chunk = max(int(chunk_seconds * self.sample_rate), self.min_length)
        return chunk, min(int(overlap_seconds * self.sample_rate), chunk // 2)

    def enhance_file(
        self,
        src: str | Path,
        dst: str | Path,
        channel: int | None = None,
        chunk_seconds: float = 30.0,
        overlap_seconds: float = 1.0,
        block_seconds: float = 5.0,
    ) -> float:
        """Enhance one audio file into ``dst`` (same rate, mono, 16-bit unless the input is float).
        Returns the duration in seconds."""
        import soxr

        src, dst = Path(src), Path(dst)
        try:
            info = sf.info(str(src))
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise DataError(str(src), f"cannot read audio: {exc}") from None
        rate, total = info.samplerate, info.frames
        if channel is not None:
            if not 0 <= channel < info.channels:
                raise DataError(str(src), f"--channel {channel}: the file has {info.channels} channel(s)")
        else:
            self._check_channels(info.channels, str(src))
        to_model = soxr.ResampleStream(rate, self.sample_rate, self.channels, dtype="float32", quality="HQ")
        from_model = soxr.ResampleStream(self.sample_rate, rate, 1, dtype="float32", quality="HQ")
        chunk, overlap = self._chunking(chunk_seconds, overlap_seconds)
        block = max(int(block_seconds * rate), 1)

        def model_rate_blocks() -> Iterator[np.ndarray]:
            with sf.SoundFile(str(src)) as f:
                while True:
                    start = f.tell()
                    data = f.read(block, dtype="float32", always_2d=True)
                    check_finite(data.T, str(src), offset=start)  # a float file may hold NaN/Inf: refuse it
                    last = len(data) < block
                    if channel is not None:
                        data = data[:, channel : channel + 1]
                    if rate == self.sample_rate:
                        out = data
                    else:
                        out = to_model.resample_chunk(np.ascontiguousarray(data), last=last)
                    if len(out):
                        yield out.T
                    if last:
                        return

        subtype = info.subtype if info.subtype in ("FLOAT", "DOUBLE", "PCM_24", "PCM_32") else "PCM_16"
        if _format_of(dst) != "WAV" and subtype != "PCM_16":
            subtype = "PCM_24"
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
        written = 0
        try:
            with sf.SoundFile(
                str(tmp), "w", samplerate=rate, channels=1, subtype=subtype, format=_format_of(dst)
            ) as out:
                pieces = self.stream(model_rate_blocks(), chunk, overlap)
                for piece in _resampled(pieces, from_model, rate != self.sample_rate):
                    piece = piece[: max(total - written, 0)]
                    out.write(np.clip(piece, -1.0, 1.0) if subtype.startswith("PCM") else piece)
                    written += len(piece)
                if written < total:  # the resampler's last few samples: pad to the input's length
                    out.write(np.zeros(total - written, dtype=np.float32))
            os.replace(tmp, dst)
        except sf.LibsndfileError as exc:  # libsndfile says only "System error." for a full disk
            raise OSError(f"{dst}: could not be written ({exc}); is the disk full?") from None
        finally:
            if tmp.exists():
                tmp.unlink()
        return total / rate


def _resampled(pieces: Iterator[np.ndarray], stream, active: bool) -> Iterator[np.ndarray]:
    if not active:
        yield from pieces
        return
    for piece in pieces:
        out = stream.resample_chunk(np.ascontiguousarray(piece, dtype=np.float32), last=False)
        if len(out):
            yield out
    yield stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


class OnnxModel:
    """An ``sekd-export --format onnx`` file run by onnxruntime, called like the torch model:
    ``[B, C, T]`` tensor in, ``[B, T]`` tensor out."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for a damaged file
            raise ValueError(
                f"{path}: not a readable ONNX model ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
        props = self.session.get_modelmeta().custom_metadata_map
        if "sekd" not in props:
            raise ValueError(f"{path}: not an sekd ONNX export (no 'sekd' metadata)")
        self.meta = json.loads(props["sekd"])

    def eval(self) -> "OnnxModel":
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"noisy": x.detach().numpy().astype(np.float32)})[0])


def _fit(x: np.ndarray, length: int) -> np.ndarray:
    return x[:length] if len(x) >= length else np.pad(x, (0, length - len(x)))


def _format_of(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    return {"flac": "FLAC", "ogg": "OGG"}.get(ext, "WAV")


def load_pretrained(path: str | Path) -> Enhancer:
    """A checkpoint or packed model as an ``Enhancer`` (``.model`` is the ``nn.Module``)."""
    return Enhancer.from_path(path)
