"""DNSMOS P.835 (SIG, BAK, OVRL) and P.808 MOS: Microsoft's non-intrusive ONNX models.

Reddy et al., "DNSMOS P.835: a non-intrusive perceptual objective speech quality metric to
evaluate noise suppressors", ICASSP 2022. The model files are those of the DNS Challenge
(``DNSMOS/sig_bak_ovr.onnx``, ``DNSMOS/model_v8.onnx``) as the PyPI package ``speechmos``
ships them; sekd runs them with onnxruntime and computes the inputs itself, as the DNS
Challenge's ``dnsmos_local.py`` does (``pip install 'sekd[dnsmos]'`` installs both).

Per clip, at 16 kHz (other rates are resampled):

- a clip shorter than 9.01 s is repeated until it is at least that long; windows of
  9.01 s (144,160 samples) every 1 s are scored and the window scores averaged;
- P.835: the window's raw samples ``[1, 144160]`` go into ``sig_bak_ovr.onnx``; its raw SIG,
  BAK, OVRL outputs are mapped by the challenge's cubic/quadratic polynomials (the
  non-personalised ones unless ``personalized``, which also picks the personalised model);
- P.808: ``model_v8.onnx`` takes the log-mel spectrogram of the window less its last 160
  samples: 120 Slaney mel bands of the power spectrum (n_fft 321, Hann window 321, hop 160,
  centred frames), in dB relative to the window's maximum with an 80 dB floor, mapped as
  ``(dB + 40) / 40`` -> ``[1, 900, 120]``. These are librosa's ``melspectrogram`` and
  ``power_to_db(ref=np.max)`` defaults, which the challenge script calls; the centre
  padding is reflective, librosa's default before 0.10 (when the model was released).
  ``tests/test_dnsmos.py`` checks this against librosa's own values.

Values are MOS estimates on 1-5. Inputs are not clipped or normalised (the challenge
script does neither).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from sekd.data.audio import resample

RATE = 16000
WINDOW = int(9.01 * RATE)  # 144,160 samples
HOP = RATE
N_FFT, MEL_HOP, N_MELS = 321, 160, 120
NAMES = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")
INSTALL_HINT = (
    "DNSMOS needs onnxruntime and the speechmos model files: pip install 'sekd[dnsmos]' "
    "(in a recipe: SEKD_EXTRAS=test,dnsmos tools/install.sh)"
)

# The DNS Challenge's mapping of the raw P.835 outputs to MOS (dnsmos_local.py).
_POLY = {
    False: {
        "sig": [-0.08397278, 1.22083953, 0.0052439],
        "bak": [-0.13166888, 1.60915514, -0.39604546],
        "ovrl": [-0.06766283, 1.11546468, 0.04602535],
    },
    True: {
        "sig": [-0.01019296, 0.02751166, 1.19576786, -0.24348726],
        "bak": [-0.04976499, 0.44276479, -0.1644611, 0.96883132],
        "ovrl": [-0.00533021, 0.005101, 1.18058466, -0.11236046],
    },
}


def available() -> str | None:
    """None when DNSMOS can run here, else the reason and how to fix it."""
    try:
        import onnxruntime  # noqa: F401

        model_dir()  # speechmos ships the model files (its Python code, which needs librosa, is not used)
    except ImportError as exc:
        return f"{INSTALL_HINT} ({exc})"
    return None


def model_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("no module named speechmos")
    return Path(list(spec.submodule_search_locations)[0])


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear to 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@functools.lru_cache(maxsize=4)
def mel_filterbank(rate: int = RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """``[n_mels, n_fft // 2 + 1]`` triangular Slaney-normalised (area 1) mel filters, 0 Hz to Nyquist."""
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)  # k rate / n_fft: 321 points do not reach 8 kHz
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(rate / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def p808_features(segment: np.ndarray, pad_mode: str = "reflect") -> np.ndarray:
    """Log-mel input of the P.808 model for one window: ``[frames, 120]`` float32."""
    x = np.pad(np.asarray(segment, dtype=np.float64), N_FFT // 2, mode=pad_mode)
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::MEL_HOP]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    mel = power @ mel_filterbank().T
    db = 10 * np.log10(np.maximum(mel, 1e-10)) - 10 * np.log10(max(mel.max(), 1e-10))
    db = np.maximum(db, db.max() - 80.0)
    return ((db + 40) / 40).astype(np.float32)


def windows(audio: np.ndarray) -> list[np.ndarray]:
    """The 9.01 s windows a clip is scored on (short clips repeated to fill one)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0:
        raise ValueError("empty signal")
    while len(audio) < WINDOW:
        audio = np.concatenate([audio, audio])
    count = int(np.floor(len(audio) / RATE) - WINDOW / RATE) + 1
    return [audio[i * HOP : i * HOP + WINDOW] for i in range(count) if i * HOP + WINDOW <= len(audio)]


class DNSMOS:
    """``DNSMOS()(audio, rate) -> {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"}``."""

    def __init__(self, personalized: bool = False, threads: int = 1, models: Path | None = None) -> None:
        import onnxruntime as ort

        models = Path(models) if models else model_dir()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        primary = models / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
        self.personalized = personalized
        self.p835 = ort.InferenceSession(str(primary), opts, providers=["CPUExecutionProvider"])
        self.p808 = ort.InferenceSession(
            str(models / "dnsmos_models" / "model_v8.onnx"), opts, providers=["CPUExecutionProvider"]
        )

    def __call__(self, audio: np.ndarray, rate: int = RATE) -> dict[str, float]:
        audio = np.asarray(audio, dtype=np.float64).reshape(-1)
        audio = resample(audio, rate, RATE)
        poly = _POLY[self.personalized]
        scores = []
        for seg in windows(audio):
            raw = self.p835.run(None, {"input_1": seg[None, :]})[0][0]
            p808 = self.p808.run(None, {"input_1": p808_features(seg[:-MEL_HOP])[None]})[0][0][0]
            scores.append([np.polyval(poly[k], r) for k, r in zip(("sig", "bak", "ovrl"), raw)] + [p808])
        mean = np.mean(np.asarray(scores, dtype=np.float64), axis=0)
        return dict(zip(NAMES, map(float, mean)))


@functools.lru_cache(maxsize=2)
def shared(personalized: bool = False) -> DNSMOS:
    """One model per process (scoring workers each load their own, on one thread)."""
    return DNSMOS(personalized=personalized)
