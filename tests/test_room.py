"""Simulated rooms and FOA (sekd.data.synth.room), the FOA mini corpus, and egs/mini_foa end to end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT

pytest.importorskip("pyroomacoustics", reason="pyroomacoustics is not installed (egs/mini_foa needs it)")

from sekd.data.synth import room  # noqa: E402
from sekd.data.synth.room import (  # noqa: E402
    A_TO_B,
    B_TO_A,
    CAPSULE_DIRECTIONS,
    RoomConfig,
    RoomGeometry,
    a_to_b,
    b_to_a,
    ism_rirs,
    render_scene,
    sample_room,
    simulate_rirs,
)

RATE = 16000


def _espeak_or_skip() -> None:
    from sekd.data.synth import EspeakError, Speaker, synthesize

    try:
        synthesize("a", Speaker("en-us", "m1"))
    except EspeakError as e:
        pytest.skip(f"eSpeak NG unavailable: {e}")


def _direction(az_deg: float, el_deg: float) -> np.ndarray:
    az, el = math.radians(az_deg), math.radians(el_deg)
    return np.array([math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)])


def test_a_to_b_is_sn3d_for_ideal_cardioids():
    """Coincident cardioids (1 + cos)/2 hit by a plane wave from d give W = 1, (Y, Z, X) = (dy, dz, dx)."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = rng.standard_normal(3)
        d /= np.linalg.norm(d)
        capsules = 0.5 * (1 + CAPSULE_DIRECTIONS @ d)
        np.testing.assert_allclose(a_to_b(capsules), [1.0, d[1], d[2], d[0]], atol=1e-12)
    a = rng.standard_normal((4, 50))
    np.testing.assert_allclose(a_to_b(a)[0], a.sum(0) / 2)  # W is the capsule sum / 2
    np.testing.assert_allclose(A_TO_B @ B_TO_A, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(b_to_a(a_to_b(a)), a, atol=1e-12)
    with pytest.raises(ValueError, match="4 capsule"):
        a_to_b(np.zeros((3, 10)))


@pytest.mark.parametrize("az,el", [(0, 0), (90, 0), (180, 0), (-90, 0), (0, 90), (45, 30), (-120, -20)])
def test_simulated_array_encodes_direction_at_low_frequency(az, el):
    """Anechoic pyroomacoustics, cardioid capsules 1.5 cm from the centre, source 5 m away (far field: the
    capsules' 1/d differences add about r/d): at 500 Hz (k r = 0.14) the B-format channels' responses
    follow the SN3D encoding of the source direction: from the front X is positive and Y, Z are zero;
    from the left Y is positive; from above Z is positive. (Not at DC: pyroomacoustics high-passes its
    RIRs, by an amount that depends on the fractional delay.)"""
    center = np.array([6.0, 6.0, 6.0])
    src = center + 5.0 * _direction(az, el)
    geom = RoomGeometry((12.0, 12.0, 12.0), 0.3, tuple(center), (tuple(src),))
    b = a_to_b(ism_rirs(geom, RATE, max_order=0)[0])  # [W, Y, Z, X] RIRs
    n = 4 * RATE
    spectrum = np.fft.rfft(b, n)[:, 500 * n // RATE]  # the 500 Hz bin
    ratio = spectrum[1:] / spectrum[0]
    d = _direction(az, el)
    np.testing.assert_allclose(ratio.real, [d[1], d[2], d[0]], atol=0.01)
    # The capsules' spacing adds a quadrature term of order k r (no spacing-compensation filter here).
    assert np.all(np.abs(ratio.imag) < 2 * np.pi * 500 / room.SPEED_OF_SOUND * 0.015)
    assert abs(spectrum[0]) * 5.0 == pytest.approx(1.0, abs=0.02)  # W: an omni at the centre, 1/d spreading


def test_rooms_are_deterministic_and_within_ranges():
    cfg = RoomConfig()
    a = [sample_room(np.random.default_rng(s)) for s in range(20)]
    assert a == [sample_room(np.random.default_rng(s)) for s in range(20)]
    assert len({g.room_dim for g in a}) == 20
    for g in a:
        dim, c = np.array(g.room_dim), np.array(g.array_center)
        assert cfg.rt60[0] <= g.rt60 <= cfg.rt60[1]
        assert np.all(c >= [1, 1, 1.2]) and np.all(c[:2] <= dim[:2] - 1)
        assert cfg.speech_distance[0] - 1e-3 <= g.distance(0) <= cfg.speech_distance[1] + 1e-3
        assert cfg.noise_distance[0] - 1e-3 <= g.distance(1) <= cfg.noise_distance[1] + 1e-3
        for p in g.sources:
            assert np.all(np.array(p) >= 0.5 - 1e-9) and np.all(np.array(p) <= dim - 0.5 + 1e-9)
        v, w = np.subtract(g.sources[0], c), np.subtract(g.sources[1], c)
        assert math.degrees(math.acos(v @ w / np.linalg.norm(v) / np.linalg.norm(w))) >= 20 - 0.5


def test_render_is_deterministic_and_target_is_aligned_with_w():
    rng = np.random.default_rng(7)
    speech, noise = rng.standard_normal(RATE), rng.standard_normal(RATE)
    geom = sample_room(np.random.default_rng(3))
    out = render_scene(speech, [noise], geom, RATE, np.random.default_rng(11))
    again = render_scene(speech, [noise], geom, RATE, np.random.default_rng(11))
    other = render_scene(speech, [noise], geom, RATE, np.random.default_rng(12))  # another diffuse tail
    for k in out:
        np.testing.assert_array_equal(out[k], again[k])
    assert not np.array_equal(out["speech"], other["speech"])
    np.testing.assert_array_equal(out["target"], other["target"])
    assert out["target"].shape == (RATE,) and out["speech"].shape == out["noise"].shape == (4, RATE)
    # The target is the dry speech delayed by d / c and scaled by 1 / d (pyroomacoustics' 1/d spreading).
    delay = geom.distance(0) / room.SPEED_OF_SOUND * RATE
    lags = np.arange(0, 400)
    xc = [out["target"][lag:] @ speech[: RATE - lag] for lag in lags]
    assert abs(lags[int(np.argmax(xc))] - delay) <= 1
    # With a white source, the target correlates best with W at lag 0 (and W with the target).
    for seed in range(5):
        g = sample_room(np.random.default_rng(100 + seed))
        o = render_scene(speech, [noise], g, RATE, np.random.default_rng(seed))
        w, t = o["speech"][0], o["target"]
        xc = {
            lag: float(np.dot(w[max(lag, 0) : RATE + min(lag, 0)], t[max(-lag, 0) : RATE - max(lag, 0)]))
            for lag in range(-20, 21)
        }
        assert max(xc, key=xc.get) == 0, (seed, g)


def test_rirs_reach_the_rt60_and_the_tail_continues_the_image_sources():
    """The hybrid RIR decays at the requested RT60 (T30 of W), and its late energy matches a full
    image-source model's (which is slow, so the room is large and the RT60 short)."""
    import pyroomacoustics as pra

    for seed, rt60 in ((0, 0.3), (1, 0.5)):
        g = sample_room(np.random.default_rng(seed))
        g = RoomGeometry(g.room_dim, rt60, g.array_center, g.sources)
        h, _ = simulate_rirs(g, RATE, np.random.default_rng(seed))
        measured = pra.experimental.measure_rt60(a_to_b(h[0])[0], RATE, decay_db=30)
        assert abs(measured - rt60) < 0.15 * rt60, (measured, rt60)
    g = RoomGeometry((7.5, 5.5, 3.4), 0.22, (3.0, 2.5, 1.5), ((4.5, 3.0, 1.6), (2.0, 4.0, 1.2)))
    assert pra.inverse_sabine(g.rt60, list(g.room_dim))[1] > RoomConfig().max_ism_order  # so a tail is used
    hybrid, _ = simulate_rirs(g, RATE, np.random.default_rng(0))
    full, _ = simulate_rirs(g, RATE, np.random.default_rng(0), RoomConfig(max_ism_order=100))
    start = 40 + int(room.mixing_time(g.room_dim, RoomConfig().max_ism_order) * RATE)
    w_hybrid, w_full = a_to_b(hybrid[0])[0], a_to_b(full[0])[0]
    for k in range(3):  # three 30 ms windows after the mixing time
        s = slice(start + k * 480, start + (k + 1) * 480)
        ratio_db = 10 * np.log10(np.sum(w_hybrid[s] ** 2) / np.sum(w_full[s] ** 2))
        assert abs(ratio_db) < 3.0, (k, ratio_db)
    early = slice(0, start - 200)  # the same image sources (a few of order > 12 arrive this early: -30 dB)
    err = np.sum((hybrid[0][:, early] - full[0][:, early]) ** 2) / np.sum(full[0][:, early] ** 2)
    assert err < 1e-3, err


def test_foa_utterance_and_corpus(tmp_path):
    _espeak_or_skip()
    from sekd.data.synth import make_mini_corpus
    from sekd.data.synth.mini_corpus import render_foa_utterance

    out = tmp_path / "foa"
    opts = dict(
        num_train=2,
        num_valid=1,
        num_test=1,
        num_train_speakers=1,
        num_valid_speakers=1,
        num_test_speakers=1,
        num_babble_speakers=3,
        noise_types=["pink", "babble"],
        nj=1,
    )
    summary = make_mini_corpus(out, seed=3, array="foa", **opts)
    assert summary["train"]["utterances"] == 2
    params = json.loads((out / ".params.json").read_text())
    assert params["array"] == "foa" and params["room"]["version"] == room.ROOM_VERSION
    for subset in ("train", "valid", "test"):
        d = out / subset
        proc = subprocess.run([str(ROOT / "utils" / "validate_data_dir.sh"), str(d)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        for line in (d / "wav.scp").read_text().splitlines():
            utt, path = line.split()
            noisy, rate = sf.read(path, dtype="int16")
            clean, _ = sf.read(path.replace("/noisy/", "/clean/"), dtype="int16")
            noise, _ = sf.read(path.replace("/noisy/", "/noise/"), dtype="int16")
            assert rate == RATE and noisy.shape[1] == 4 and noise.shape == noisy.shape
            assert clean.ndim == 1 and len(clean) == len(noisy)
            image = noisy.astype(np.int32) - noise  # the speech image, W first
            xc = [np.dot(image[100:-100, 0], np.roll(clean, lag)[100:-100].astype(np.float64)) for lag in range(-3, 4)]
            # aligned (speech is low-pass, so reflections can tip the peak by a sample; the white-noise
            # test above checks lag 0 exactly)
            assert abs(int(np.argmax(xc)) - 3) <= 1, (utt, xc)
        rt60 = [float(line.split()[1]) for line in (d / "utt2rt60").read_text().splitlines()]
        assert all(0.2 <= r <= 0.6 for r in rt60)
        assert len((d / "utt2distance").read_text().splitlines()) == len(rt60)
    # the check the recipe's stage 2 runs
    from sekd.data import DataDir

    DataDir(out / "test").check_audio(RATE, 4)
    # A rendered utterance is a pure function of its plan.
    from sekd.data.synth.mini_corpus import plan_set
    from sekd.data.synth.tts import make_speaker_pools

    pools = make_speaker_pools(0, 1, 1, 1, 3)
    plan = plan_set("test", 1, pools["test"], pools["babble"], np.random.SeedSequence(0), (0.0, 10.0), ["white"])[0]
    a, geom_a = render_foa_utterance(plan)
    b, geom_b = render_foa_utterance(plan)
    assert geom_a == geom_b and all(np.array_equal(a[k], b[k]) for k in a)
    # A mono corpus is never taken for the FOA one (nor the other way round).
    with pytest.raises(FileExistsError, match="holds a foa corpus, not mono"):
        make_mini_corpus(out, seed=3, **opts)
    with pytest.raises(ValueError, match="array must be"):
        make_mini_corpus(tmp_path / "x", array="binaural", **opts)


def test_mini_foa_recipe_end_to_end(tmp_path):
    """egs/mini_foa/run.sh on a tiny corpus: 4-channel data through every stage to exp/RESULTS.md."""
    import yaml

    _espeak_or_skip()
    data, exp = tmp_path / "data", tmp_path / "exp"
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parents[1])
    args = [
        "--datadir",
        str(data),
        "--exp",
        str(exp),
        "--data_opts",
        "--num_train 6 --num_valid 2 --num_test 2 --num_train_speakers 2 "
        "--num_valid_speakers 1 --num_test_speakers 1 --nj 1",
        "--train_opts",
        "--train.max_epochs 1 --train.steps_per_epoch 2 --data.batch_size 2 --train.num_threads 1",
        "--metrics",
        "pesq_wb,stoi,sisdr",
        "--report_opts",
        "--profile_seconds 0.25",
    ]
    proc = subprocess.run(
        [str(ROOT / "egs" / "mini_foa" / "run.sh"), *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sf.info(data.joinpath("test", "wav.scp").read_text().split()[1]).channels == 4
    results = (exp / "RESULTS.md").read_text()
    rows = [line.split(" | ")[0][2:] for line in results.splitlines() if line.startswith("| ")]
    assert {"noisy", "teacher_dpdcrn", "student_dpdcrn", "student_kd_i2srf_tfckd"} <= set(rows), results
    assert "| student_kd_i2srf_tfckd | kd | i2srf_tfckd (teacher_dpdcrn) |" in results
    for system in ("teacher_dpdcrn", "student_dpdcrn", "student_kd_i2srf_tfckd"):
        cfg = yaml.safe_load((exp / system / "config.yaml").read_text())
        assert cfg["model"]["args"]["in_channels"] == 4 and cfg["data"]["channels"] == 4
        enhanced = (exp / system / "enhanced" / "test" / "wav.scp").read_text().split()
        assert sf.info(enhanced[1]).channels == 1
        assert (exp / system / "scoring" / "test" / "sisdr.scp").exists()
