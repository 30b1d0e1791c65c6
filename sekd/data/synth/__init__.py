"""Speech and noise synthesis: eSpeak NG talkers, noise generators, the mini corpus."""

from .mini_corpus import SETS, make_mini_corpus, plan_set, render_utterance, summarize_corpus
from .noise import (
    NOISE_TYPES,
    active_power,
    babble_noise,
    brown_noise,
    click_noise,
    colored_noise,
    hum_noise,
    make_noise,
    measure_snr,
    mix_at_snr,
    modulated_noise,
    peak_normalize,
    pink_noise,
    sample_snr,
    white_noise,
)
from .tts import Espeak, EspeakError, Speaker, default_engine, make_speaker_pools, synthesize
from .words import make_sentence, sentence_to_tts

__all__ = [
    "NOISE_TYPES",
    "SETS",
    "Espeak",
    "EspeakError",
    "Speaker",
    "active_power",
    "babble_noise",
    "brown_noise",
    "click_noise",
    "colored_noise",
    "default_engine",
    "hum_noise",
    "make_mini_corpus",
    "make_noise",
    "make_sentence",
    "make_speaker_pools",
    "measure_snr",
    "mix_at_snr",
    "modulated_noise",
    "peak_normalize",
    "pink_noise",
    "plan_set",
    "render_utterance",
    "sample_snr",
    "sentence_to_tts",
    "summarize_corpus",
    "synthesize",
    "white_noise",
]
