"""The "mini_spk" corpus: synthetic talkers for speaker verification, deterministic for a seed.

Layout written by :func:`make_spk_corpus`::

    out_dir/.params.json                the parameters; marks the corpus complete
    out_dir/wav/<set>/<utt>.wav         16 kHz mono 16-bit PCM
    out_dir/{train,valid,test}/         wav.scp utt2spk spk2utt utt2dur text (+ trials for valid and test)

Speakers are eSpeak NG voices (``sekd.data.synth.tts``): a language voice, a voice variant
and prosody (pitch, rate, pitch range), drawn by :func:`~sekd.data.synth.tts.make_speaker_pools`,
so no voice+variant pair is in two speaker sets. ``train`` has ``num_train_speakers`` talkers with
``utts_per_speaker`` utterances each; ``valid`` holds ``valid_utts_per_speaker`` *further*
utterances of the same training talkers (held-out utterances, as VoxCeleb1's identification
split gives the voxceleb1 recipe); ``test`` has ``num_test_speakers`` talkers disjoint from
training with ``test_utts_per_speaker`` utterances each. ``trials`` of valid and test list every
pair of their utterances once (``<a> <b> target|nontarget``, ``a < b``).

An utterance: a sentence of 4-12 words (:mod:`.words`) spoken by its talker with per-utterance
prosody jitter (pitch +-``pitch_jitter``, rate +-``rate_jitter`` words/min, pitch range +-10, so
a talker is not one fixed waveform generator), set to an active level uniform in [-30, -20]
dBFS, and, unless ``snr_range`` is None, mixed with a stationary or slowly modulated noise
(white, pink, brown, modulated, hum; :mod:`.noise`) at an SNR uniform in ``snr_range``
(default 10-30 dB: lightly noisy), scaled to peak at most 0.9 and quantised to 16 bits.

Determinism and atomicity as :mod:`.mini_corpus`: everything is planned up front from
``SeedSequence(seed)``; each utterance is a pure function of its plan (eSpeak is reseeded
per utterance), so the corpus is byte-identical whatever ``nj``; it is written to a hidden
temporary directory and renamed into place, and a rerun with the same parameters does nothing.
Utterance ids ``<speaker id>_<set>_<nnnn>`` sort with their speaker ids.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from .corpus_dir import PARAMS_FILE, building, clear_for_build, is_built, render_all
from .noise import active_power, make_noise, mix_at_snr, peak_normalize
from .tts import Speaker, make_speaker_pools, synthesize
from .words import make_sentence, sentence_to_tts

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1  # bump when the same parameters would give different audio
SETS = ("train", "valid", "test")
NOISE_TYPES = ("white", "pink", "brown", "modulated", "hum")
SPEECH_LEVEL_DBFS = (-30.0, -20.0)
PEAK = 0.9


@dataclass(frozen=True)
class SpkUtterance:
    """Everything needed to render one utterance."""

    utt_id: str
    subset: str
    speaker: Speaker  # the talker as spoken (prosody jitter applied)
    speaker_id: str  # the talker's id (without the jitter)
    words: tuple[str, ...]
    noise_type: str | None
    snr_db: float | None
    level_dbfs: float
    seed: int


def _jitter(speaker: Speaker, rng: np.random.Generator, pitch: int, rate: int) -> Speaker:
    return replace(
        speaker,
        pitch=int(np.clip(speaker.pitch + rng.integers(-pitch, pitch + 1), 0, 100)),
        rate=int(np.clip(speaker.rate + rng.integers(-rate, rate + 1), 80, 450)),
        pitch_range=int(np.clip(speaker.pitch_range + rng.integers(-10, 11), 0, 100)),
    )


def plan_corpus(
    seed: int,
    num_train_speakers: int,
    num_test_speakers: int,
    utts_per_speaker: int,
    valid_utts_per_speaker: int,
    test_utts_per_speaker: int,
    snr_range: tuple[float, float] | None,
    pitch_jitter: int,
    rate_jitter: int,
) -> dict[str, list]:
    """The utterances of every set, planned from ``seed``."""
    pools = make_speaker_pools(seed, num_train_speakers, 0, num_test_speakers, 0)
    counts = {"train": utts_per_speaker, "valid": valid_utts_per_speaker, "test": test_utts_per_speaker}
    talkers = {"train": pools["train"], "valid": pools["train"], "test": pools["test"]}
    plans: dict[str, list] = {}
    for subset, ss in zip(SETS, np.random.SeedSequence([seed, 0x5B1C]).spawn(len(SETS))):
        plan_ss, render_ss = ss.spawn(2)
        rng = np.random.default_rng(plan_ss)
        n = counts[subset] * len(talkers[subset])
        seeds = render_ss.generate_state(max(n, 1), dtype=np.uint32)
        out = []
        for i in range(n):
            spk = talkers[subset][i // counts[subset]]
            noise_type, snr = None, None
            if snr_range is not None:
                noise_type = NOISE_TYPES[int(rng.integers(len(NOISE_TYPES)))]
                snr = round(float(rng.uniform(*snr_range)), 2)
            out.append(
                SpkUtterance(
                    utt_id=f"{spk.speaker_id}_{subset}_{i % counts[subset]:04d}",
                    subset=subset,
                    speaker=_jitter(spk, rng, pitch_jitter, rate_jitter),
                    speaker_id=spk.speaker_id,
                    words=tuple(make_sentence(rng)),
                    noise_type=noise_type,
                    snr_db=snr,
                    level_dbfs=round(float(rng.uniform(*SPEECH_LEVEL_DBFS)), 2),
                    seed=int(seeds[i]),
                )
            )
        plans[subset] = out
    return plans


def render(utt: SpkUtterance, sample_rate: int = 16000) -> np.ndarray:
    """The utterance's int16 samples."""
    rng = np.random.default_rng(utt.seed)
    speech = synthesize(sentence_to_tts(list(utt.words)), utt.speaker, sample_rate, seed=utt.seed).astype(np.float64)
    speech *= 10 ** (utt.level_dbfs / 20) / np.sqrt(active_power(speech, sample_rate))
    if utt.noise_type is not None:
        noise = make_noise(utt.noise_type, len(speech), rng, sample_rate)
        speech = mix_at_snr(speech, noise, utt.snr_db, sample_rate)[0]
    (speech,) = peak_normalize(speech, peak=PEAK)
    return np.clip(np.round(speech.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def _render_and_write(job: tuple[SpkUtterance, str, int]) -> tuple[str, int]:
    utt, wav_root, rate = job
    x = render(utt, rate)
    sf.write(os.path.join(wav_root, utt.subset, utt.utt_id + ".wav"), x, rate, subtype="PCM_16")
    return utt.utt_id, len(x)


def _all_pairs(utts: Sequence[SpkUtterance]) -> list[tuple[str, str]]:
    ids = sorted(utts, key=lambda u: u.utt_id.encode())
    return [
        (f"{a.utt_id} {b.utt_id}", "target" if a.speaker_id == b.speaker_id else "nontarget")
        for i, a in enumerate(ids)
        for b in ids[i + 1 :]
    ]


def make_spk_corpus(
    out_dir: str | os.PathLike,
    seed: int = 0,
    num_train_speakers: int = 100,
    num_test_speakers: int = 20,
    utts_per_speaker: int = 12,
    valid_utts_per_speaker: int = 2,
    test_utts_per_speaker: int = 10,
    snr_range: tuple[float, float] | None = (10.0, 30.0),
    pitch_jitter: int = 3,
    rate_jitter: int = 10,
    sample_rate: int = 16000,
    nj: int = 1,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Synthesize the corpus into ``out_dir`` (module docstring); returns per-set
    ``{"utterances", "speakers", "trials", "hours"}``."""
    for name, v in (
        ("num_train_speakers", num_train_speakers),
        ("num_test_speakers", num_test_speakers),
        ("utts_per_speaker", utts_per_speaker),
        ("valid_utts_per_speaker", valid_utts_per_speaker),
        ("test_utts_per_speaker", test_utts_per_speaker),
    ):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if num_test_speakers < 2 or test_utts_per_speaker < 2 or valid_utts_per_speaker < 2 or num_train_speakers < 2:
        raise ValueError("trials need >= 2 speakers with >= 2 utterances each in valid and test")
    params = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "num_speakers": {"train": num_train_speakers, "test": num_test_speakers},
        "utts_per_speaker": {"train": utts_per_speaker, "valid": valid_utts_per_speaker, "test": test_utts_per_speaker},
        "snr_range": None if snr_range is None else [float(snr_range[0]), float(snr_range[1])],
        "pitch_jitter": int(pitch_jitter),
        "rate_jitter": int(rate_jitter),
        "sample_rate": int(sample_rate),
    }
    out = Path(os.path.abspath(out_dir))
    if is_built(out, params, SETS):
        log.info("%s already holds this corpus (%s); nothing to do", out, PARAMS_FILE)
        return summarize(out)
    clear_for_build(out, overwrite, lambda old: "was made with other parameters" if old else "is not a finished corpus")
    plans = plan_corpus(
        seed,
        num_train_speakers,
        num_test_speakers,
        utts_per_speaker,
        valid_utts_per_speaker,
        test_utts_per_speaker,
        snr_range,
        pitch_jitter,
        rate_jitter,
    )
    from sekd.data.prep import Utt, write_data_dir, write_table

    with building(out, params) as tmp:
        for s in SETS:
            (tmp / "wav" / s).mkdir(parents=True)
        jobs = [(u, str(tmp / "wav"), sample_rate) for s in SETS for u in plans[s]]
        lengths = dict(render_all(_render_and_write, jobs, nj, progress, "simulate mini_spk", chunksize=8))
        for s in SETS:
            write_data_dir(
                tmp / s,
                [
                    Utt(
                        u.utt_id,
                        str(out / "wav" / s / f"{u.utt_id}.wav"),
                        u.speaker_id,
                        lengths[u.utt_id] / sample_rate,
                        extra={"text": " ".join(u.words)},
                    )
                    for u in plans[s]
                ],
            )
            if s != "train":
                write_table(tmp / s / "trials", _all_pairs(plans[s]))
    return summarize(out)


def summarize(out_dir: str | os.PathLike) -> dict[str, dict[str, float]]:
    """Per set: utterances, speakers, hours and trials (valid/test), read from the data dirs."""
    from sekd.data.prep import summarize_data_dir

    return {s: summarize_data_dir(Path(out_dir) / s) for s in SETS if (Path(out_dir) / s / "utt2dur").is_file()}
