"""DNSMOS: the P.808 features against librosa's, the scores against the speechmos reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sekd.metrics import dnsmos

from conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(dnsmos.available() is not None, reason="sekd[dnsmos] not installed")

# speechmos 0.0.1.1 dnsmos.run() (librosa 0.11.0, onnxruntime 1.32.0) on the pysepm example
# files. Its P.808 input uses librosa >= 0.10's zero padding at the clip ends where sekd pads
# reflectively (librosa's default when the model was released), so P.808 agrees to 0.01
# and P.835, which takes raw samples, to 1e-3.
REFERENCE = {
    "1_noisySpeech_16000_Hz.wav": {
        "dnsmos_sig": 3.3803,
        "dnsmos_bak": 1.5374,
        "dnsmos_ovrl": 1.9045,
        "dnsmos_p808": 2.6521,
    },
    "1_processed_16000_Hz.wav": {
        "dnsmos_sig": 2.0238,
        "dnsmos_bak": 3.5370,
        "dnsmos_ovrl": 1.7900,
        "dnsmos_p808": 2.4761,
    },
    "1_speech_16000_Hz.wav": {"dnsmos_sig": 3.5388, "dnsmos_bak": 4.1436, "dnsmos_ovrl": 3.3189, "dnsmos_p808": 4.1489},
}


def test_p808_features_match_librosa():
    ref = np.load(Path(__file__).with_name("data") / "dnsmos_p808_features_librosa.npz")
    mine = dnsmos.p808_features(ref["signal"])
    assert mine.shape == ref["features"].shape == (25, 120)
    np.testing.assert_allclose(mine, ref["features"], atol=1e-5)
    # Slaney-normalised filters have unit area in Hz; the wide upper bands show it on the FFT grid.
    fb = dnsmos.mel_filterbank()
    assert fb.shape == (120, 161) and (fb >= 0).all()
    np.testing.assert_allclose(fb[-40:].sum(axis=1) * 16000 / 321, 1.0, atol=0.1)


def test_window_count_and_repetition():
    assert len(dnsmos.windows(np.ones(16000))) == 7  # 1 s doubled to 16 s: windows start at 0..6 s
    long = dnsmos.windows(np.arange(12 * 16000, dtype=np.float32))
    assert len(long) == 3 and all(len(w) == dnsmos.WINDOW for w in long)
    assert long[1][0] == 16000  # one-second hop
    with pytest.raises(ValueError, match="empty"):
        dnsmos.windows(np.zeros(0))


@pytest.mark.skipif(not (SHARED_DATA / "real_pairs").is_dir(), reason="../shared/data/real_pairs absent")
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_scores_match_reference(name):
    audio, rate = sf.read(SHARED_DATA / "real_pairs" / name, dtype="float32")
    got = dnsmos.shared()(audio, rate)
    for key, value in REFERENCE[name].items():
        assert got[key] == pytest.approx(value, abs=0.01 if key == "dnsmos_p808" else 1e-3), key


@pytest.mark.skipif(not (SHARED_DATA / "real_pairs").is_dir(), reason="../shared/data/real_pairs absent")
def test_clean_beats_noisy_and_rate_is_resampled():
    clean, rate = sf.read(SHARED_DATA / "real_pairs" / "1_speech_16000_Hz.wav", dtype="float32")
    noisy, _ = sf.read(SHARED_DATA / "real_pairs" / "1_noisySpeech_16000_Hz.wav", dtype="float32")
    model = dnsmos.shared()
    c, n = model(clean, rate), model(noisy, rate)
    assert c["dnsmos_bak"] > n["dnsmos_bak"] + 1 and c["dnsmos_ovrl"] > n["dnsmos_ovrl"] + 1
    from scipy.signal import resample_poly

    c8 = model(resample_poly(clean, 1, 2), 8000)  # resampled back to 16 kHz: band-limited, close
    assert abs(c8["dnsmos_bak"] - c["dnsmos_bak"]) < 0.5
