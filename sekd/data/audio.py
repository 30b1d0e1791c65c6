"""Reading and writing audio named by Kaldi scp values.

An scp value is one of: a path to an audio file soundfile can read (wav, flac, ...),
an ark entry ``file.ark:offset`` (read by kaldiio), or a command ending in ``|`` whose
stdout is audio (read by kaldiio). Audio comes back as float32 ``[C, T]``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from sekd.data.errors import DataError

_ARK = re.compile(r".*\.ark:\d+(\[.*\])?$")


def is_plain_path(value: str) -> bool:
    """True when ``value`` names an audio file (not a pipe or an ark offset)."""
    return not value.endswith("|") and not _ARK.match(value)


def audio_info(value: str) -> tuple[int, int, int]:
    """``(sample_rate, channels, frames)`` of an scp value, reading only the header of files."""
    if is_plain_path(value):
        info = sf.info(value)
        return info.samplerate, info.channels, info.frames
    rate, data = _load_kaldiio(value)
    return rate, data.shape[0], data.shape[1]


def _load_kaldiio(value: str) -> tuple[int, np.ndarray]:
    import kaldiio

    loaded = kaldiio.load_mat(value)
    if not isinstance(loaded, tuple):
        raise ValueError("entry holds a matrix, not audio (expected a (rate, samples) wav entry)")
    rate, data = loaded
    data = np.asarray(data)
    if data.dtype == np.int16:
        data = data.astype(np.float32) / 32768.0
    elif data.dtype == np.int32:
        data = data.astype(np.float32) / 2147483648.0
    data = data.astype(np.float32, copy=False)
    data = data[None] if data.ndim == 1 else data.T  # kaldiio gives [T, C]
    return int(rate), np.ascontiguousarray(data)


def load_audio(value: str, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, int]:
    """Read samples ``[start, stop)`` of an scp value as float32 ``[C, T]`` and its rate."""
    if is_plain_path(value):
        data, rate = sf.read(value, start=start, stop=stop, dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.T), rate
    rate, data = _load_kaldiio(value)
    return data[:, start:stop], rate


def check_finite(samples: np.ndarray, where: str, what: str = "", offset: int = 0) -> None:
    """Raise ``DataError(where, what + ...)`` when ``samples`` (``[C, T]`` or ``[T]``) hold NaN or Inf;
    the message gives the first such sample's index (plus ``offset``) and how many there are."""
    bad = ~np.isfinite(samples)
    if bad.any():
        first = offset + int(np.argmax(bad.reshape(-1, samples.shape[-1]).any(axis=0)))
        raise DataError(where, f"{what}{int(bad.sum())} NaN or Inf sample(s), the first at sample {first}")


def write_wav(path: str | os.PathLike, samples: np.ndarray, rate: int) -> None:
    """Write ``[T]`` or ``[C, T]`` float samples as 16-bit PCM, clipping to [-1, 1]."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.T
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        sf.write(str(path), np.clip(samples, -1.0, 1.0 - 1.0 / 32768), rate, subtype="PCM_16")
    except (OSError, RuntimeError) as exc:  # libsndfile says only "System error." for a full disk
        raise OSError(f"{path}: could not be written ({exc}); is the disk full?") from None


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resampling along the last axis with soxr ("VHQ", as ``sekd.data.prep.convert`` and, in its
    streaming form, ``sekd.infer.Enhancer``): the one resampler of every tool that reads audio at
    another rate. Floating inputs keep their precision, others become float32. (The mini corpus's
    speech synthesizer keeps its own polyphase filter, ``sekd.data.synth.tts``: changing it would
    change every synthesized corpus.)"""
    if from_rate == to_rate:
        return x
    import soxr

    x = np.asarray(x)
    dtype = np.result_type(x, np.float32)
    two_d = x.reshape(-1, x.shape[-1]).T.astype(np.float64)  # soxr: [frames, channels]
    out = soxr.resample(np.ascontiguousarray(two_d), int(from_rate), int(to_rate), quality="VHQ")
    return out.T.reshape(*x.shape[:-1], out.shape[0]).astype(dtype)
