"""The eSpeak NG engine (``Espeak``), driven through ``ctypes``; the speakers and the corpus's
synthesis (:func:`sekd.data.synth.tts.synthesize`) are in ``tts``.

The engine is the eSpeak NG shared library shipped by the PyPI package ``espeakng-loader``
(``libespeak-ng.so`` plus its ``espeak-ng-data``), driven through ``ctypes``:
``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, ...)``, a synth callback that collects the
16-bit samples, ``espeak_SetVoiceByName("en-us+f3")``, ``espeak_SetParameter`` for rate,
pitch and pitch range, ``espeak_Synth(..., espeakCHARS_AUTO, ...)`` and
``espeak_Synchronize``. The library speaks at 22,050 Hz; :func:`synthesize` resamples
(``scipy.signal.resample_poly``, 320/441 for 16 kHz) and trims the silence at both ends.

Determinism. eSpeak keeps synthesis state in C ``static`` variables (the pitch-flutter
phase, the automatic gain control, the roughness cycle counter, breath and Klatt filter
memories, and its random generator), and neither ``espeak_Terminate`` nor
``espeak_Initialize`` resets them: the same text spoken twice in one process comes out
different. The Klatt voices also draw noise from the C library's ``rand()``. So before
every utterance :class:`Espeak` unloads and reloads the library (``dlclose``/``dlopen``,
about 2 ms), seeds eSpeak's generator (``espeak_ng_SetRandSeed``) and reseeds libc's
(``srand``; a side effect on the process, harmless to Python and numpy, which do not
use it).
An utterance is then a pure function of (text, voice, rate, pitch, range, seed), whatever
was synthesized before it and in whichever process, which is what lets the corpus be
built in parallel and still be byte-identical. The library is process-global, so one
lock serialises all calls; :func:`default_engine` hands out one engine per process.

Fallback: when the library cannot be loaded, a system ``espeak-ng`` binary is run
(``espeak-ng --stdout -v voice -s rate -p pitch [-P range]``); that path is slower and
is not guaranteed bit-exact for voices that use noise (breathy, whispered, Klatt).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import re
import shutil
import struct
import subprocess
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_ESPEAK_CHARS_AUTO = 0
_ESPEAK_RATE, _ESPEAK_PITCH, _ESPEAK_RANGE = 1, 3, 4
_EE_OK = 0

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakError(RuntimeError):
    """eSpeak NG could not be loaded or refused a request."""


class _LibraryBackend:
    """ctypes binding of libespeak-ng; reloaded before every utterance (see module doc)."""

    def __init__(self, library_path: str | None, data_path: str | None) -> None:
        if library_path is None or data_path is None:
            try:
                import espeakng_loader
            except ImportError as e:
                raise EspeakError("the Python package espeakng-loader is not installed") from e
            library_path = library_path or espeakng_loader.get_library_path()
            data_path = data_path or espeakng_loader.get_data_path()
        self.library_path, self.data_path = str(library_path), str(data_path)
        if not Path(self.library_path).is_file():
            raise EspeakError(f"eSpeak NG library not found: {self.library_path}")
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._on_samples)  # kept alive for the library
        self._lib: ctypes.CDLL | None = None
        self.sample_rate = 0
        self._srand = _libc_srand()
        self._load()

    def _on_samples(self, wav, num_samples, events) -> int:  # noqa: ANN001 (C callback)
        if num_samples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0  # 0 = continue synthesis

    def _load(self) -> None:
        try:
            lib = ctypes.CDLL(self.library_path)
        except OSError as e:
            raise EspeakError(f"cannot load {self.library_path}: {e}") from e
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_Terminate.restype = ctypes.c_int
        self._has_seed = hasattr(lib, "espeak_ng_SetRandSeed")
        if self._has_seed:
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed.restype = None
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), _ESPEAK_INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed ({rate}) with data path {self.data_path}")
        lib.espeak_SetSynthCallback(self._callback)
        self._lib, self.sample_rate = lib, rate

    def _reload(self) -> None:
        lib, self._lib = self._lib, None
        if lib is not None:
            lib.espeak_Terminate()
            _dlclose(lib)
        self._load()

    def variants(self) -> list[str]:
        return sorted(p.name for p in (Path(self.data_path) / "voices" / "!v").iterdir())

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int) -> np.ndarray:
        self._reload()
        lib = self._lib
        if self._has_seed:
            lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
        if self._srand is not None:
            self._srand(int(seed) & 0xFFFFFFFF)
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise EspeakError(f"eSpeak NG has no voice {voice!r}")
        for param, value in ((_ESPEAK_RATE, rate), (_ESPEAK_PITCH, pitch), (_ESPEAK_RANGE, pitch_range)):
            if lib.espeak_SetParameter(param, int(value), 0) != _EE_OK:
                raise EspeakError(f"espeak_SetParameter({param}, {value}) failed")
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_AUTO, None, None)
        if err != _EE_OK or lib.espeak_Synchronize() != _EE_OK:
            raise EspeakError(f"espeak_Synth failed ({err}) for {text!r}")
        chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


@functools.lru_cache(maxsize=None)
def _shared_library_backend(library_path: str | None, data_path: str | None) -> _LibraryBackend:
    """One binding per library: a second ``dlopen`` handle would keep the library (and its
    state) loaded across the other's reloads."""
    return _LibraryBackend(library_path, data_path)


def _libc_srand():  # noqa: ANN202
    """libc's ``srand`` (the Klatt voices use ``rand()``), or None where it cannot be found."""
    try:
        srand = ctypes.CDLL(None).srand
    except (OSError, AttributeError):
        return None
    srand.argtypes = [ctypes.c_uint]
    srand.restype = None
    return srand


def _dlclose(lib: ctypes.CDLL) -> None:
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(lib._handle)


class _CliBackend:
    """The ``espeak-ng`` program, one process per utterance, WAV on stdout."""

    def __init__(self, program: str) -> None:
        self.program = program
        help_text = subprocess.run([program, "--help"], capture_output=True, text=True).stdout
        self._has_range = re.search(r"^\s*-P\b", help_text, re.MULTILINE) is not None
        self.sample_rate = 0
        probe = self.synth("a", "en", 175, 50, 50, 0)
        if probe.size == 0 or self.sample_rate <= 0:
            raise EspeakError(f"{program} produced no audio")

    def variants(self) -> list[str]:
        out = subprocess.run([self.program, "--voices=variant"], capture_output=True, text=True).stdout
        names = [m.group(1) for m in re.finditer(r"!v/(\S+)", out)]
        return sorted(set(names))

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int, seed: int) -> np.ndarray:
        cmd = [self.program, "--stdout", "-v", voice, "-s", str(rate), "-p", str(pitch)]
        if self._has_range:
            cmd += ["-P", str(pitch_range)]
        proc = subprocess.run(cmd + ["--", text], capture_output=True)
        if proc.returncode != 0:
            raise EspeakError(f"{' '.join(cmd)} failed: {proc.stderr.decode(errors='replace')}")
        rate_hz, samples = _parse_streamed_wav(proc.stdout)
        self.sample_rate = rate_hz
        return samples


def _parse_streamed_wav(data: bytes) -> tuple[int, np.ndarray]:
    """16-bit mono WAV from a pipe, whose RIFF/data sizes may be placeholders."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EspeakError("espeak-ng --stdout did not write a WAV stream")
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        tag, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if tag == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[pos + 8 : pos + 24])
            if channels != 1 or bits != 16:
                raise EspeakError(f"expected 16-bit mono from espeak-ng, got {channels} ch {bits} bit")
        elif tag == b"data":
            body = data[pos + 8 :]
            body = body[: len(body) // 2 * 2]
            return rate, np.frombuffer(body, dtype="<i2").copy()
        pos += 8 + size + (size & 1)
    raise EspeakError("no data chunk in the espeak-ng WAV stream")


class Espeak:
    """eSpeak NG text-to-speech, one per process: ``synth(text, voice, ...) -> float32 [T]``.

    ``backend``: ``"auto"`` (the espeakng-loader library, else an ``espeak-ng`` program
    on ``PATH``), ``"library"`` or ``"cli"``. :attr:`sample_rate` is what the engine
    speaks at (22,050 Hz). Calls are serialised by a process-wide lock because the C
    library is global state.
    """

    _lock = threading.Lock()

    def __init__(self, backend: str = "auto", library_path: str | None = None, data_path: str | None = None) -> None:
        if backend not in ("auto", "library", "cli"):
            raise ValueError(f"backend must be auto, library or cli, got {backend!r}")
        self._impl: _LibraryBackend | _CliBackend
        self._variants: frozenset[str] | None = None
        with self._lock:
            if backend in ("auto", "library"):
                try:
                    self._impl = _shared_library_backend(library_path, data_path)
                    self.backend = "library"
                    return
                except EspeakError as e:
                    if backend == "library":
                        raise
                    log.warning("eSpeak NG library unavailable (%s); trying the espeak-ng program", e)
                    library_error = str(e)
            else:
                library_error = "not tried"
            program = shutil.which("espeak-ng")
            if program is None:
                raise EspeakError(
                    "eSpeak NG is not available: the espeakng-loader library failed "
                    f"({library_error}) and no espeak-ng program is on PATH. "
                    "Install it with `pip install espeakng-loader` (tools/install.sh does) "
                    "or your system's espeak-ng package."
                )
            self._impl = _CliBackend(program)
            self.backend = "cli"

    @property
    def sample_rate(self) -> int:
        return self._impl.sample_rate

    def variants(self) -> list[str]:
        """Names of the voice variants in ``espeak-ng-data/voices/!v``."""
        return self._impl.variants()

    def synth(
        self,
        text: str,
        voice: str = "en-us",
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        seed: int = 0,
    ) -> np.ndarray:
        """Speak ``text`` with ``voice`` (``"en-us+f3"``); float32 in [-1, 1) at :attr:`sample_rate`.

        ``rate`` is words per minute (80-450), ``pitch`` and ``pitch_range`` 0-100;
        ``seed`` seeds eSpeak's own random generator (breath and Klatt noise).
        """
        if not text.strip():
            raise ValueError("text is empty")
        if not 80 <= rate <= 450:
            raise ValueError(f"rate must be 80-450 words/min, got {rate}")
        for name, v in (("pitch", pitch), ("pitch_range", pitch_range)):
            if not 0 <= v <= 100:
                raise ValueError(f"{name} must be 0-100, got {v}")
        if "+" in voice:
            variant = voice.split("+", 1)[1]
            if self._variants is None:
                self._variants = frozenset(self.variants())
            if variant not in self._variants:
                raise EspeakError(f"eSpeak NG has no voice variant {variant!r} (voice {voice!r})")
        with self._lock:
            samples = self._impl.synth(text, voice, rate, pitch, pitch_range, seed)
        return samples.astype(np.float32) / 32768.0


@functools.lru_cache(maxsize=1)
def default_engine() -> Espeak:
    """The process's :class:`Espeak` (created on first use)."""
    return Espeak()
