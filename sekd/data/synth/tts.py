"""eSpeak NG speech synthesis for the mini corpus, and the synthetic speakers it speaks with.

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
import math
import re
import shutil
import struct
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

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

# English voices in espeak-ng-data/lang/gmw (en-Shaw, the Shavian alphabet, is left out).
ENGLISH_VOICES: tuple[str, ...] = (
    "en-us",
    "en",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)

# Variants from espeak-ng-data/voices/!v that sound like a person. Left out: robots
# (robosoft*, UniRobot, anikaRobot, announcer, Demonic, RicishayMax*), whispers
# (whisper, whisperf, caleb), the speed test "fast", "Mr serious" (space in the name),
# "Tweaky", "kaukovalta", and klatt4/klatt5 (they clip).
FEMALE_VARIANTS: tuple[str, ...] = (
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "Alicia",
    "Andrea",
    "Annie",
    "aunty",
    "belinda",
    "linda",
    "anika",
    "steph",
    "steph2",
    "steph3",
    "grandma",
    "shelby",
    "zac",
)
MALE_VARIANTS: tuple[str, ...] = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "Alex",
    "Andy",
    "AnxiousAndy",
    "Denis",
    "Diogo",
    "Gene",
    "Gene2",
    "Henrique",
    "Hugo",
    "Jacky",
    "Lee",
    "Marco",
    "Mario",
    "Michael",
    "Mike",
    "Nguyen",
    "Storm",
    "antonio",
    "boris",
    "ed",
    "gustave",
    "ian",
    "iven",
    "iven2",
    "iven3",
    "iven4",
    "john",
    "marcelo",
    "max",
    "michel",
    "miguel",
    "norbert",
    "pablo",
    "paul",
    "pedro",
    "quincy",
    "rob",
    "robert",
    "sandro",
    "travis",
    "victor",
    "grandpa",
    "croak",
)
# Klatt-synthesizer variants (a different source/filter model; male pitch).
KLATT_VARIANTS: tuple[str, ...] = (
    "klatt",
    "klatt2",
    "klatt3",
    "klatt6",
    "Reed",
    "adam",
    "benjamin",
    "david",
    "edward",
    "edward2",
    "mike2",
)

PITCH_RANGE = (35, 65)  # espeakPITCH, 0-100 (50 = the variant's own pitch)
RATE_RANGE = (150, 190)  # espeakRATE, words per minute
PITCH_RANGE_RANGE = (30, 80)  # espeakRANGE, 0-100 (0 = monotone)


class EspeakError(RuntimeError):
    """eSpeak NG could not be loaded or refused a request."""


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """The synthesizer's resampler: polyphase (``scipy.signal.resample_poly``; 22,050 -> 16,000 Hz is
    up 320, down 441). Part of the corpus definition: other tools use ``sekd.data.audio.resample``."""
    if from_rate == to_rate:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(int(from_rate), int(to_rate))
    return resample_poly(x, to_rate // g, from_rate // g, axis=-1).astype(np.result_type(x, np.float32))


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


@dataclass(frozen=True)
class Speaker:
    """A synthetic talker: an eSpeak language voice, a voice variant and prosody settings.

    ``voice`` is a language voice (``"en-us"``), ``variant`` a file of
    ``espeak-ng-data/voices/!v`` (``"f3"``, ``"m2"``, ``"klatt"``); ``pitch`` (0-100,
    50 = the variant's own), ``rate`` (words per minute) and ``pitch_range`` (0-100)
    go to ``espeak_SetParameter``.
    """

    voice: str
    variant: str
    pitch: int = 50
    rate: int = 175
    pitch_range: int = 50

    @property
    def espeak_name(self) -> str:
        """The name for ``espeak_SetVoiceByName``: ``"en-us+f3"``."""
        return f"{self.voice}+{self.variant}" if self.variant else self.voice

    @property
    def speaker_id(self) -> str:
        """Kaldi speaker id, ``spk-<voice>-<variant>-p<pitch>`` limited to ``[A-Za-z0-9_-]``."""
        return _sanitize(f"spk-{self.voice}-{self.variant}-p{self.pitch}")

    @property
    def gender(self) -> str:
        """``"f"`` for the female variants, ``"m"`` otherwise."""
        return "f" if self.variant in FEMALE_VARIANTS else "m"


def make_speaker_pools(
    seed: int,
    num_train: int,
    num_valid: int,
    num_test: int,
    num_babble: int,
    voices: Sequence[str] = ENGLISH_VOICES,
) -> dict[str, list[Speaker]]:
    """Draw disjoint speaker sets ``{"train", "valid", "test", "babble"}``, deterministic in ``seed``.

    Every (voice, variant) pair is used by at most one speaker, so no two sets share a
    voice-variant combination. Pairs are shuffled within three groups (female, male,
    Klatt) and merged in the proportion 50 / 35 / 15 %, so every set gets a mix of both
    genders and of both synthesizers. Pitch, rate and pitch range are drawn per pair
    before the split, and the split takes test, valid, babble and then train from the
    front of the list: changing ``num_train`` does not change the other three sets.
    With the defaults there are 8 voices x 80 variants = 640 pairs.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    groups = ((FEMALE_VARIANTS, 0.50), (MALE_VARIANTS, 0.35), (KLATT_VARIANTS, 0.15))
    keyed: list[tuple[float, int, tuple[str, str]]] = []
    for g, (variants, weight) in enumerate(groups):
        pairs = [(v, var) for var in variants for v in voices]
        order = rng.permutation(len(pairs))
        keyed += [((i + 0.5) / weight, g, pairs[j]) for i, j in enumerate(order)]
    keyed.sort(key=lambda k: (k[0], k[1]))
    speakers = []
    for _, _, (voice, variant) in keyed:
        speakers.append(
            Speaker(
                voice=voice,
                variant=variant,
                pitch=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
                rate=int(rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1)),
                pitch_range=int(rng.integers(PITCH_RANGE_RANGE[0], PITCH_RANGE_RANGE[1] + 1)),
            )
        )
    counts = {"test": num_test, "valid": num_valid, "babble": num_babble, "train": num_train}
    if any(n < 0 for n in counts.values()):
        raise ValueError(f"speaker counts must be >= 0, got {counts}")
    if sum(counts.values()) > len(speakers):
        raise ValueError(
            f"asked for {sum(counts.values())} speakers {counts}, but only {len(speakers)} "
            f"distinct voice+variant pairs exist ({len(voices)} voices)"
        )
    pools, start = {}, 0
    for name, n in counts.items():
        pools[name] = speakers[start : start + n]
        start += n
    return pools


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


def trim_silence(
    x: np.ndarray,
    sample_rate: int,
    threshold_db: float = 40.0,
    margin_s: float = 0.05,
    frame_s: float = 0.01,
) -> np.ndarray:
    """Cut leading and trailing frames quieter than the loudest frame by ``threshold_db``,
    keeping ``margin_s`` seconds of context on each side."""
    frame = max(1, int(round(frame_s * sample_rate)))
    n = len(x) // frame
    if n == 0:
        return x
    power = (x[: n * frame].astype(np.float64).reshape(n, frame) ** 2).mean(axis=1)
    if power.max() <= 0:
        return x[:0]
    active = np.nonzero(power >= power.max() * 10.0 ** (-threshold_db / 10.0))[0]
    margin = int(round(margin_s * sample_rate))
    start = max(0, active[0] * frame - margin)
    stop = min(len(x), (active[-1] + 1) * frame + margin)
    return x[start:stop]


def synthesize(
    text: str,
    speaker: Speaker,
    sample_rate: int = 16000,
    seed: int = 0,
    engine: Espeak | None = None,
    trim: bool = True,
) -> np.ndarray:
    """Speak ``text`` as ``speaker``: float32 mono at ``sample_rate``, silence trimmed
    to about 50 ms at each end. Deterministic in its arguments (library backend)."""
    engine = engine or default_engine()
    wav = engine.synth(text, speaker.espeak_name, speaker.rate, speaker.pitch, speaker.pitch_range, seed)
    wav = resample(wav, engine.sample_rate, sample_rate)  # the generator's own filter (a corpus is defined by it)
    if trim:
        wav = trim_silence(wav, sample_rate)
    if wav.size == 0:
        raise EspeakError(f"eSpeak NG produced silence for {text!r} with {speaker.espeak_name}")
    return np.ascontiguousarray(wav, dtype=np.float32)


__all__ = [
    "ENGLISH_VOICES",
    "FEMALE_VARIANTS",
    "MALE_VARIANTS",
    "KLATT_VARIANTS",
    "Espeak",
    "EspeakError",
    "Speaker",
    "default_engine",
    "make_speaker_pools",
    "resample",
    "synthesize",
    "trim_silence",
]
