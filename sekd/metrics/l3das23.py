"""The L3DAS23 task-1 (3D speech enhancement) metric: ``(STOI + (1 - WER)) / 2``.

Guizzo et al., "L3DAS23: learning 3D audio sources for audio-visual extended reality",
ICASSP 2023; the challenge's ``metrics.py`` defines, per utterance:

- WER of the ASR transcript of the enhanced signal against the ASR transcript of the clean
  reference (not against a human transcript), with a wav2vec 2.0 model (the challenge used
  ``facebook/wav2vec2-base-960h``, greedy CTC decoding of normalised input);
- WER and STOI clipped to [0, 1]; an utterance whose reference transcript has no words
  has no WER and is left out (NaN here, counted as failed by the scorer);
- the challenge score is the mean over utterances.

The ASR model is a directory the user gives (a Hugging Face wav2vec 2.0 CTC checkpoint,
loaded with ``transformers``: ``pip install 'sekd[asr]'``). Nothing is downloaded; without a
model the scorer reports the metric as unavailable.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from sekd.data.audio import resample

Transcriber = Callable[[np.ndarray, int], str]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """``(substitutions + deletions + insertions, reference words)`` by Levenshtein on words."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of one hypothesis; NaN when the reference has no words."""
    errors, words = word_errors(reference, hypothesis)
    return errors / words if words else math.nan


def task1_metric(ref: np.ndarray, est: np.ndarray, rate: int, transcribe: Transcriber) -> dict[str, float]:
    """``{"wer", "l3das23"}`` for one utterance (``ref`` clean, ``est`` enhanced, mono)."""
    from pystoi import stoi

    w = wer(transcribe(ref, rate), transcribe(est, rate))
    if math.isnan(w):
        raise ValueError("the reference transcript has no words")
    w = float(np.clip(w, 0.0, 1.0))
    s = float(np.clip(stoi(ref, est, rate, extended=False), 0.0, 1.0))
    return {"wer": w, "l3das23": (s + 1.0 - w) / 2.0}


class Wav2Vec2Transcriber:
    """Greedy CTC transcripts from a wav2vec 2.0 checkpoint directory (``config.json``, weights,
    ``vocab.json``, ``preprocessor_config.json``), at 16 kHz (other rates are resampled)."""

    def __init__(self, path: str, threads: int = 1) -> None:
        try:
            import torch
            from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor
        except ImportError as exc:
            raise ImportError(f"the L3DAS23 metric's ASR needs transformers: pip install 'sekd[asr]' ({exc})") from exc
        torch.set_num_threads(threads)
        self.processor = Wav2Vec2Processor.from_pretrained(path)
        self.model = Wav2Vec2ForCTC.from_pretrained(path).eval()

    def __call__(self, audio: np.ndarray, rate: int) -> str:
        import torch

        audio = resample(np.asarray(audio), rate, 16000)
        inputs = self.processor(np.asarray(audio, dtype=np.float32), sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            ids = self.model(inputs.input_values).logits.argmax(dim=-1)
        return self.processor.batch_decode(ids)[0]


@functools.lru_cache(maxsize=1)
def shared_transcriber(path: str) -> Wav2Vec2Transcriber:
    """One ASR model per scoring process."""
    return Wav2Vec2Transcriber(path)
