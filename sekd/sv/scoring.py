"""Trial scoring for speaker verification: cosine similarity and adaptive score normalisation.

Cosine score of a trial (enrollment embedding ``e``, test embedding ``t``, optional mean ``mu``
subtracted from both first, e.g. the mean training embedding as WeSpeaker's recipes do):

    s(e, t) = <e - mu, t - mu> / (|e - mu| |t - mu|)

Adaptive symmetric score normalisation (AS-norm; Matejka et al., Interspeech 2017, "Analysis of
score normalization in multilingual speaker recognition"; S-norm with an adaptive cohort): for
each side, score the embedding against every cohort embedding, keep the ``top_n`` highest
scores, and take their mean and standard deviation (``mu_e, sigma_e`` for the enrollment side,
``mu_t, sigma_t`` for the test side); then

    s_norm = ((s - mu_e) / sigma_e + (s - mu_t) / sigma_t) / 2

The cohort is usually one (mean) embedding per training speaker. Choices where the paper leaves
room: the population standard deviation (``ddof = 0``) of the top-N scores, as WeSpeaker's
``score_norm.py``; ``top_n`` larger than the cohort uses the whole cohort (then this is S-norm);
``sigma`` is floored at ``eps``.

Trial lists (:func:`read_trials`): Kaldi's / WeSpeaker's ``<enroll> <test> target|nontarget`` or
VoxCeleb's ``1|0 <enroll> <test>``; errors name the file and line.

Embeddings are numpy arrays (what kaldiio reads back); scores are float64.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from sekd.data.errors import DataError


def _normalise(x: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    if mean is not None:
        x = x - np.asarray(mean, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine_matrix(a: np.ndarray, b: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """Cosine similarity of every row of ``a [N, D]`` with every row of ``b [M, D]``: ``[N, M]``."""
    return _normalise(a, mean) @ _normalise(b, mean).T


def _stack(embeddings: Mapping[str, np.ndarray], keys: Sequence[str], side: str) -> np.ndarray:
    missing = [k for k in keys if k not in embeddings]
    if missing:
        raise KeyError(f"no {side} embedding for {len(missing)} utterance(s), e.g. {missing[0]!r}")
    return np.stack([np.asarray(embeddings[k], dtype=np.float64).reshape(-1) for k in keys])


def _index(trials: Sequence[tuple[str, str]], side: int) -> tuple[list[str], np.ndarray]:
    keys = sorted({t[side] for t in trials})
    pos = {k: i for i, k in enumerate(keys)}
    return keys, np.array([pos[t[side]] for t in trials], dtype=np.int64)


def cosine_score(
    enroll: Mapping[str, np.ndarray],
    trials: Iterable[tuple[str, ...]],
    test: Mapping[str, np.ndarray] | None = None,
    mean: np.ndarray | None = None,
) -> np.ndarray:
    """Cosine score ``[K]`` of each trial ``(enroll_key, test_key, ...)`` (extra fields, e.g. labels, ignored).

    ``test`` defaults to ``enroll`` (VoxCeleb trials take both sides from one set of embeddings).
    """
    trials = [(t[0], t[1]) for t in trials]
    test = enroll if test is None else test
    e_keys, e_idx = _index(trials, 0)
    t_keys, t_idx = _index(trials, 1)
    e = _normalise(_stack(enroll, e_keys, "enrollment"), mean)
    t = _normalise(_stack(test, t_keys, "test"), mean)
    return np.einsum("kd,kd->k", e[e_idx], t[t_idx])


def cohort_stats(
    embeddings: np.ndarray, cohort: np.ndarray, top_n: int = 300, mean: np.ndarray | None = None, eps: float = 1e-8
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std ``([N], [N])`` of the ``top_n`` highest cosine scores of each embedding against the cohort."""
    scores = cosine_matrix(embeddings, cohort, mean)
    n = min(int(top_n), scores.shape[1])
    if n < 1:
        raise ValueError(f"top_n must be >= 1 and the cohort non-empty (top_n={top_n}, cohort={scores.shape[1]})")
    top = -np.partition(-scores, n - 1, axis=1)[:, :n]
    return top.mean(axis=1), np.maximum(top.std(axis=1), eps)


def as_norm(
    scores: np.ndarray, enroll_mean: np.ndarray, enroll_std: np.ndarray, test_mean: np.ndarray, test_std: np.ndarray
) -> np.ndarray:
    """``((s - mu_e) / sigma_e + (s - mu_t) / sigma_t) / 2``, all arguments ``[K]`` (per trial)."""
    scores = np.asarray(scores, dtype=np.float64)
    return 0.5 * ((scores - enroll_mean) / enroll_std + (scores - test_mean) / test_std)


def score_trials(
    enroll: Mapping[str, np.ndarray],
    trials: Iterable[tuple[str, ...]],
    test: Mapping[str, np.ndarray] | None = None,
    cohort: np.ndarray | None = None,
    top_n: int = 300,
    mean: np.ndarray | None = None,
) -> np.ndarray:
    """Cosine scores ``[K]`` of the trials, AS-normalised against ``cohort [C, D]`` when one is given.

    Cohort statistics are computed once per distinct enrollment / test utterance.
    """
    trials = [(t[0], t[1]) for t in trials]
    scores = cosine_score(enroll, trials, test, mean)
    if cohort is None:
        return scores
    test = enroll if test is None else test
    cohort = np.atleast_2d(np.asarray(cohort, dtype=np.float64))
    e_keys, e_idx = _index(trials, 0)
    t_keys, t_idx = _index(trials, 1)
    e_mu, e_sd = cohort_stats(_stack(enroll, e_keys, "enrollment"), cohort, top_n, mean)
    t_mu, t_sd = cohort_stats(_stack(test, t_keys, "test"), cohort, top_n, mean)
    return as_norm(scores, e_mu[e_idx], e_sd[e_idx], t_mu[t_idx], t_sd[t_idx])


LABELS = {"target": 1, "nontarget": 0, "1": 1, "0": 0}


def read_trials(path: str) -> list[tuple[str, str, int]]:
    """``(enroll, test, label)`` per trial, in file order."""
    if not Path(path).is_file():
        raise DataError(str(path), "trials file not found")
    trials, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for num, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) == 3 and fields[2] in ("target", "nontarget"):
                enroll, test, label = fields[0], fields[1], LABELS[fields[2]]
            elif len(fields) == 3 and fields[0] in ("0", "1"):
                enroll, test, label = fields[1], fields[2], LABELS[fields[0]]
            else:
                raise DataError(
                    f"{path}:{num}",
                    f"expected '<enroll> <test> target|nontarget' or '1|0 <enroll> <test>', got {line.strip()!r}",
                )
            if (enroll, test) in seen:
                raise DataError(f"{path}:{num}", f"trial {enroll} {test} listed twice")
            seen.add((enroll, test))
            trials.append((enroll, test, label))
    if not trials:
        raise DataError(path, "no trials")
    return trials
