"""eSpeak NG speech synthesis for the mini corpus, and the synthetic speakers it speaks with.
The engine itself (``Espeak``, its ctypes library binding and CLI fallback) is in
:mod:`sekd.data.synth.espeak`; this module draws the speakers and turns text into corpus audio.

The library speaks at 22,050 Hz; :func:`synthesize` resamples (``scipy.signal.resample_poly``,
320/441 for 16 kHz) and trims the silence at both ends. An utterance is a pure function of
(text, voice, rate, pitch, range, seed), in whichever process (the engine's module says how),
which is what lets the corpus be built in parallel and still be byte-identical.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sekd.data.synth.espeak import Espeak, EspeakError, default_engine

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
