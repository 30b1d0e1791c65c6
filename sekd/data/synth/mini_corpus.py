"""The "mini" corpus: noisy/clean speech synthesized on the fly, deterministic for a seed.

Layout written by :func:`make_mini_corpus` (``<set>`` is ``train``, ``valid``, ``test``)::

    out_dir/.params.json                       the parameters; marks the corpus complete
    out_dir/wav/<set>/{noisy,clean,noise}/<utt>.wav   16 kHz mono 16-bit PCM
    out_dir/<set>/wav.scp      utt -> noisy wav (absolute path)
    out_dir/<set>/spk1.scp     utt -> clean wav
    out_dir/<set>/noise1.scp   utt -> noise wav (as mixed: noisy == clean + noise exactly)
    out_dir/<set>/utt2spk  spk2utt  utt2dur (s, 3 decimals)  text (lowercase words)
    out_dir/<set>/utt2snr (dB, active speech power over noise power)  utt2noise (type)

Every file is sorted by key in C-locale order. Utterance ids are
``<speaker id>_<set>_<index:05d>``, speaker ids ``spk-<voice>-<variant>-p<pitch>``.

How an utterance is made: a sentence of 4-12 words (:mod:`.words`) is spoken by the
utterance's speaker (:mod:`.tts`) and set to an active level uniform in [-30, -20] dBFS;
a noise of the utterance's type is generated (:mod:`.noise`; babble from 3-6 talkers of a
separate babble pool) and mixed at an SNR uniform in ``snr_range``; all three signals are
then scaled together so that none peaks above 0.9, and quantised to 16 bits with the
noisy signal computed as the sum of the quantised clean and noise signals.

Determinism: speakers, sentences, noise types, SNRs and seeds are all planned up front
from ``numpy.random.SeedSequence(seed)`` (one spawned child per set), and every utterance
is then rendered as a pure function of its plan, so the wavs are byte-identical for a
seed whatever ``nj`` is. Speaker sets are disjoint (no voice+variant pair in two sets).

Atomicity: the corpus is written to a hidden temporary directory next to ``out_dir`` and
renamed into place at the end, so a killed run leaves no half-written ``out_dir``. A
rerun with the same parameters finds ``.params.json`` and does nothing.

First-order Ambisonics (``array="foa"``, :func:`render_foa_utterance`): the same planned
speech and noise (same sentences, speakers, noise types, SNRs, levels) are placed as two
point sources in a simulated room and captured by a tetrahedral A-format microphone
converted to B-format (:mod:`.room`: geometry, directivity, rooms, RIR model). Then
``wav.scp`` holds 4-channel wavs in ACN order ``[W, Y, Z, X]`` (SN3D), ``spk1.scp`` the
mono target, the direct-path speech at the array centre (time-aligned with W), and
``noise1.scp`` the 4-channel noise image (``noisy == speech image + noise`` exactly, as
integers). Levels: the target's active level is the planned level; the SNR is the active
power of the speech image over the mean noise power, both on W. Extra tables:
``utt2rt60`` (s) and ``utt2distance`` (m, source to array centre). The room of an
utterance is drawn from its own stream, ``default_rng([plan.seed, 1])``, so it is also a
pure function of the plan. ``.params.json`` gains ``"array": "foa"`` and the room
configuration; a mono corpus's parameters are unchanged (and its wavs byte-identical),
so a mono corpus directory is never taken for an FOA one or the other way round.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import soundfile as sf

from sekd.data.prep import summarize_data_dir, write_table

from .corpus_dir import PARAMS_FILE, building, clear_for_build, is_built, render_all
from .noise import NOISE_TYPES, active_power, make_noise, mix_at_snr, peak_normalize, sample_snr
from .tts import Speaker, make_speaker_pools, synthesize
from .words import make_sentence, sentence_to_tts

if TYPE_CHECKING:
    from .room import RoomGeometry

log = logging.getLogger(__name__)

SETS: tuple[str, ...] = ("train", "valid", "test")
GENERATOR_VERSION = 1  # bump when the same parameters would give different audio
SPEECH_LEVEL_DBFS = (-30.0, -20.0)
PEAK = 0.9
ARRAYS: tuple[str, ...] = ("foa",)  # array=None: mono
ROOM_STREAM = 1  # the room of an utterance: default_rng([plan.seed, ROOM_STREAM])


@dataclass(frozen=True)
class UtterancePlan:
    """Everything needed to render one utterance; rendering is a pure function of it."""

    utt_id: str
    subset: str
    speaker: Speaker
    words: tuple[str, ...]
    noise_type: str
    snr_db: float
    level_dbfs: float
    seed: int
    babble: tuple[tuple[Speaker, str, int], ...] = ()  # (talker, tts text, tts seed)


def _seed_int(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def plan_set(
    subset: str,
    num_utts: int,
    speakers: Sequence[Speaker],
    babble_speakers: Sequence[Speaker],
    seed_seq: np.random.SeedSequence,
    snr_range: tuple[float, float],
    noise_types: Sequence[str] = NOISE_TYPES,
) -> list[UtterancePlan]:
    """Plan the utterances of one set: speakers and noise types spread evenly, shuffled."""
    if num_utts == 0:
        return []
    if not speakers:
        raise ValueError(f"set {subset!r} has {num_utts} utterances but no speakers")
    plan_ss, render_ss = seed_seq.spawn(2)
    rng = np.random.default_rng(plan_ss)
    spk_of = [speakers[i % len(speakers)] for i in rng.permutation(num_utts)]
    noise_of = [noise_types[i % len(noise_types)] for i in rng.permutation(num_utts)]
    render_seeds = render_ss.spawn(num_utts)
    plans = []
    for i in range(num_utts):
        words = tuple(make_sentence(rng))
        snr = sample_snr(rng, snr_range)
        level = round(float(rng.uniform(*SPEECH_LEVEL_DBFS)), 2)
        babble: tuple[tuple[Speaker, str, int], ...] = ()
        if noise_of[i] == "babble":
            if len(babble_speakers) == 0:
                raise ValueError("babble noise needs babble speakers (num_babble_speakers > 0)")
            k = min(int(rng.integers(3, 7)), len(babble_speakers))
            talkers = rng.permutation(len(babble_speakers))[:k]
            babble = tuple(
                (babble_speakers[t], sentence_to_tts(make_sentence(rng, 8, 12)), int(rng.integers(2**31)))
                for t in talkers
            )
        plans.append(
            UtterancePlan(
                utt_id=f"{spk_of[i].speaker_id}_{subset}_{i:05d}",
                subset=subset,
                speaker=spk_of[i],
                words=words,
                noise_type=noise_of[i],
                snr_db=snr,
                level_dbfs=level,
                seed=_seed_int(render_seeds[i]),
                babble=babble,
            )
        )
    return plans


def _to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def _dry_signals(plan: UtterancePlan, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The planned speech at its active level (float64) and the unscaled noise of the same length."""
    rng = np.random.default_rng(plan.seed)
    speech = synthesize(sentence_to_tts(list(plan.words)), plan.speaker, sample_rate, seed=plan.seed)
    speech = speech.astype(np.float64) * (10 ** (plan.level_dbfs / 20) / np.sqrt(active_power(speech, sample_rate)))
    talkers = None
    if plan.noise_type == "babble":
        talkers = [synthesize(text, spk, sample_rate, seed=s) for spk, text, s in plan.babble]
        noise = make_noise("babble", len(speech), rng, sample_rate, babble_talkers=talkers)
    else:
        noise = make_noise(plan.noise_type, len(speech), rng, sample_rate)
    return speech, noise


def render_utterance(plan: UtterancePlan, sample_rate: int = 16000) -> dict[str, np.ndarray]:
    """Synthesize and mix one planned utterance: int16 ``{"clean", "noise", "noisy"}``."""
    speech, noise = _dry_signals(plan, sample_rate)
    noisy, noise = mix_at_snr(speech, noise, plan.snr_db, sample_rate)
    speech, noise, noisy = peak_normalize(speech, noise, noisy, peak=PEAK)
    clean_q, noise_q = _to_int16(speech), _to_int16(noise)
    noisy_q = (clean_q.astype(np.int32) + noise_q).clip(-32768, 32767).astype(np.int16)
    return {"clean": clean_q, "noise": noise_q, "noisy": noisy_q}


def render_foa_utterance(plan: UtterancePlan, sample_rate: int = 16000) -> tuple[dict[str, np.ndarray], RoomGeometry]:
    """One planned utterance in a simulated room, as FOA (module docstring).

    Returns int16 ``{"clean": [T] direct-path target, "noise": [4, T], "noisy": [4, T]}``
    (B-format W, Y, Z, X) and the room it was rendered in.
    """
    from .room import render_scene, sample_room

    speech, noise = _dry_signals(plan, sample_rate)
    rng = np.random.default_rng([plan.seed, ROOM_STREAM])
    geom = sample_room(rng)
    scene = render_scene(speech, [noise], geom, sample_rate, rng)
    gain = 10 ** (plan.level_dbfs / 20) / np.sqrt(active_power(scene["target"], sample_rate))
    target, image = scene["target"] * gain, scene["speech"] * gain
    p_noise = float(np.mean(scene["noise"][0] ** 2))
    if p_noise <= 0:
        raise ValueError(f"{plan.utt_id}: the noise is silent at the array; SNR is undefined")
    noise_img = scene["noise"] * np.sqrt(active_power(image[0], sample_rate) / (p_noise * 10.0 ** (plan.snr_db / 10.0)))
    target, image, noise_img = peak_normalize(target, image, noise_img, image + noise_img, peak=PEAK)[:3]
    clean_q, image_q, noise_q = _to_int16(target), _to_int16(image), _to_int16(noise_img)
    noisy_q = (image_q.astype(np.int32) + noise_q).clip(-32768, 32767).astype(np.int16)
    return {"clean": clean_q, "noise": noise_q, "noisy": noisy_q}, geom


def _render_and_write(args: tuple[UtterancePlan, str, int, str | None]) -> tuple[str, int, dict | None]:
    plan, wav_root, sample_rate, array = args
    info = None
    if array == "foa":
        signals, geom = render_foa_utterance(plan, sample_rate)
        info = {"rt60": geom.rt60, "distance": geom.distance(0)}
    else:
        signals = render_utterance(plan, sample_rate)
    for kind, x in signals.items():
        sf.write(os.path.join(wav_root, plan.subset, kind, plan.utt_id + ".wav"), x.T, sample_rate, subtype="PCM_16")
    return plan.utt_id, signals["clean"].shape[-1], info


def _write_data_dir(
    data_dir: Path,
    wav_root: str,
    plans: Sequence[UtterancePlan],
    lengths: dict[str, int],
    sample_rate: int,
    rooms: dict[str, dict] | None = None,
) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    subset = data_dir.name

    def wav(kind: str, utt: str) -> str:
        return os.path.join(wav_root, subset, kind, utt + ".wav")

    write_table(data_dir / "wav.scp", ((p.utt_id, wav("noisy", p.utt_id)) for p in plans))
    write_table(data_dir / "spk1.scp", ((p.utt_id, wav("clean", p.utt_id)) for p in plans))
    write_table(data_dir / "noise1.scp", ((p.utt_id, wav("noise", p.utt_id)) for p in plans))
    write_table(data_dir / "utt2spk", ((p.utt_id, p.speaker.speaker_id) for p in plans))
    write_table(data_dir / "utt2dur", ((p.utt_id, f"{lengths[p.utt_id] / sample_rate:.3f}") for p in plans))
    write_table(data_dir / "text", ((p.utt_id, " ".join(p.words)) for p in plans))
    write_table(data_dir / "utt2snr", ((p.utt_id, f"{p.snr_db:.2f}") for p in plans))
    write_table(data_dir / "utt2noise", ((p.utt_id, p.noise_type) for p in plans))
    if rooms is not None:
        write_table(data_dir / "utt2rt60", ((p.utt_id, f"{rooms[p.utt_id]['rt60']:.3f}") for p in plans))
        write_table(data_dir / "utt2distance", ((p.utt_id, f"{rooms[p.utt_id]['distance']:.3f}") for p in plans))
    spk2utt: dict[str, list[str]] = {}
    for p in plans:
        spk2utt.setdefault(p.speaker.speaker_id, []).append(p.utt_id)
    write_table(data_dir / "spk2utt", ((s, " ".join(sorted(u))) for s, u in spk2utt.items()))
    # Kaldi requires utt2spk and spk2utt to sort the same way.
    utts = sorted(p.utt_id for p in plans)
    spk = {p.utt_id: p.speaker.speaker_id for p in plans}
    if [spk[u] for u in utts] != sorted(spk[u] for u in utts):
        raise RuntimeError(f"{data_dir}: utterance ids do not sort with their speaker ids")


def summarize_corpus(out_dir: str | os.PathLike) -> dict[str, dict[str, float]]:
    """Per set: ``{"utterances", "speakers", "hours"}``, read from the data dirs."""
    return {s: summarize_data_dir(Path(out_dir) / s) for s in SETS if (Path(out_dir) / s / "utt2dur").is_file()}


def _render_all(
    jobs: list[tuple[UtterancePlan, str, int, str | None]], nj: int, progress: bool
) -> tuple[dict[str, int], dict[str, dict]]:
    lengths: dict[str, int] = {}
    infos: dict[str, dict] = {}
    for utt, n, info in render_all(_render_and_write, jobs, nj, progress, "simulate mini"):
        lengths[utt] = n
        if info is not None:
            infos[utt] = info
    return lengths, infos


def make_mini_corpus(
    out_dir: str | os.PathLike,
    seed: int = 0,
    num_train: int = 1000,
    num_valid: int = 100,
    num_test: int = 100,
    num_train_speakers: int = 40,
    num_valid_speakers: int = 5,
    num_test_speakers: int = 10,
    num_babble_speakers: int = 12,
    snr_range: tuple[float, float] = (-5.0, 15.0),
    sample_rate: int = 16000,
    noise_types: Sequence[str] = NOISE_TYPES,
    nj: int = 1,
    overwrite: bool = False,
    progress: bool = False,
    array: str | None = None,
) -> dict[str, dict[str, float]]:
    """Synthesize the mini corpus into ``out_dir`` (see the module docstring for the layout).

    ``array``: ``None`` for mono wavs, ``"foa"`` for 4-channel first-order Ambisonics rendered
    in simulated rooms (needs pyroomacoustics; module docstring).

    Returns :func:`summarize_corpus`'s per-set summary. When ``out_dir`` already holds a
    complete corpus made with the same parameters it is left alone. When it holds
    anything else, :class:`FileExistsError` is raised unless ``overwrite`` is true (an
    empty directory is simply replaced). ``nj`` worker processes render in parallel;
    the output does not depend on ``nj``.
    """
    for name, n in (("num_train", num_train), ("num_valid", num_valid), ("num_test", num_test)):
        if n < 0:
            raise ValueError(f"{name} must be >= 0, got {n}")
    unknown = sorted(set(noise_types) - set(NOISE_TYPES))
    if unknown or not noise_types:
        raise ValueError(f"noise_types must be a non-empty subset of {NOISE_TYPES}, got {list(noise_types)}")
    if snr_range[0] > snr_range[1]:
        raise ValueError(f"snr_range low > high: {snr_range}")
    if array is not None and array not in ARRAYS:
        raise ValueError(f"array must be None (mono) or one of {ARRAYS}, got {array!r}")
    params = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "num_utterances": {"train": num_train, "valid": num_valid, "test": num_test},
        "num_speakers": {
            "train": num_train_speakers,
            "valid": num_valid_speakers,
            "test": num_test_speakers,
            "babble": num_babble_speakers,
        },
        "snr_range": [float(snr_range[0]), float(snr_range[1])],
        "sample_rate": int(sample_rate),
        "noise_types": list(noise_types),
    }
    if array == "foa":
        if importlib.util.find_spec("pyroomacoustics") is None:  # fail before rendering anything
            raise ImportError("array='foa' needs pyroomacoustics (pip install pyroomacoustics)", name="pyroomacoustics")
        from .room import ROOM_VERSION, RoomConfig

        params["array"] = "foa"
        params["room"] = {"version": ROOM_VERSION, **RoomConfig().to_dict()}
    out = Path(os.path.abspath(out_dir))
    if is_built(out, params, SETS):
        log.info("%s already holds this corpus (%s); nothing to do", out, PARAMS_FILE)
        return summarize_corpus(out)

    def why(old: dict | None) -> str:
        if not old:
            return "is not a finished mini corpus"
        kinds = (old.get("array", "mono"), params.get("array", "mono"))
        return (
            f"holds a {kinds[0]} corpus, not {kinds[1]}" if kinds[0] != kinds[1] else "was made with other parameters"
        )

    clear_for_build(out, overwrite, why)

    pools = make_speaker_pools(seed, num_train_speakers, num_valid_speakers, num_test_speakers, num_babble_speakers)
    set_seeds = dict(zip(SETS, np.random.SeedSequence(seed).spawn(len(SETS))))
    counts = {"train": num_train, "valid": num_valid, "test": num_test}
    plans = {s: plan_set(s, counts[s], pools[s], pools["babble"], set_seeds[s], snr_range, noise_types) for s in SETS}

    with building(out, params) as tmp:
        for s in SETS:
            for kind in ("noisy", "clean", "noise"):
                (tmp / "wav" / s / kind).mkdir(parents=True)
        jobs = [(p, str(tmp / "wav"), sample_rate, array) for s in SETS for p in plans[s]]
        lengths, rooms = _render_all(jobs, nj, progress)
        for s in SETS:
            _write_data_dir(
                tmp / s, str(out / "wav"), plans[s], lengths, sample_rate, rooms if array is not None else None
            )
    return summarize_corpus(out)
