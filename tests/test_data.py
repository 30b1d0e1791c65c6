"""Kaldi data dirs: reading, crops, multi-channel, and a clear error for each bad input."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from sekd.data import CropDataset, DataDir, DataError, UtteranceDataset, read_scp

from conftest import make_data_dir


def test_read_and_crop(tmp_path):
    d = make_data_dir(tmp_path / "d", num_utts=4, seconds=1.0)
    data = DataDir(d)
    assert len(data) == 4 and data.utt_ids == sorted(data.utt_ids)
    ds = CropDataset(data, segment=0.5, seed=3)
    noisy, clean = ds[1]
    assert noisy.shape == (1, 8000) and clean.shape == (8000,)
    # The crop is the same slice of the noisy and of the clean file.
    full_noisy, _ = sf.read(data.wav[data.utt_ids[1]].value, dtype="float32")
    full_clean, _ = sf.read(data.ref[data.utt_ids[1]].value, dtype="float32")
    start = int(np.argmin([np.abs(full_clean[s : s + 8000] - clean.numpy()).sum() for s in range(0, 8001)]))
    assert np.allclose(full_noisy[start : start + 8000], noisy[0].numpy(), atol=1e-6)
    # Deterministic per (seed, epoch, index); a new epoch draws a new crop.
    assert torch.equal(ds[1][1], CropDataset(data, 0.5, seed=3)[1][1])
    ds.set_epoch(1)
    assert not torch.equal(ds[1][1], clean)


def test_short_utterances_are_padded(tmp_path):
    d = make_data_dir(tmp_path / "d", num_utts=2, seconds=0.25)
    noisy, clean = CropDataset(d, segment=0.5)[0]
    assert noisy.shape == (1, 8000) and float(clean[4000:].abs().max()) == 0.0


def test_multichannel_input(tmp_path):
    d = make_data_dir(tmp_path / "d", num_utts=2, seconds=0.5, channels=4)
    key, noisy, clean = UtteranceDataset(d, channels=4)[0]
    assert noisy.shape == (4, 8000) and clean.shape == (8000,)
    with pytest.raises(DataError, match=r"wav.scp:1: .*4 channels, expected 1"):
        UtteranceDataset(d, channels=1)[0]


def _lines(path):
    return path.read_text().splitlines()


def test_missing_file_names_file_and_line(tmp_path):
    d = make_data_dir(tmp_path / "d", num_utts=3)
    missing = data_value(d, "spk1.scp", 2)
    (tmp_path / "gone").mkdir()
    (missing).rename(tmp_path / "gone" / missing.name)
    with pytest.raises(DataError) as err:
        DataDir(d)
    assert f"{d / 'spk1.scp'}:2" in str(err.value) and str(missing) in str(err.value)


def data_value(d, name, line):
    from pathlib import Path

    return Path(_lines(d / name)[line - 1].split(maxsplit=1)[1])


def test_unreadable_audio(tmp_path):
    d = make_data_dir(tmp_path / "d", num_utts=3)
    bad = data_value(d, "wav.scp", 3)
    bad.write_bytes(b"this is not audio")
    with pytest.raises(DataError) as err:
        DataDir(d).check_audio(16000)
    assert f"{d / 'wav.scp'}:3" in str(err.value) and "unreadable audio" in str(err.value)
    with pytest.raises(DataError, match="unreadable audio"):
        UtteranceDataset(d)[2]


def test_sample_rate_mismatch(tmp_path):
    d = make_data_dir(tmp_path / "d", num_utts=2)
    path = data_value(d, "wav.scp", 1)
    x, _ = sf.read(path)
    sf.write(path, x, 8000)
    with pytest.raises(DataError) as err:
        DataDir(d).check_audio(16000)
    assert f"{d / 'wav.scp'}:1" in str(err.value) and "8000 Hz, expected 16000 Hz" in str(err.value)
    with pytest.raises(DataError, match=r"wav.scp:1: .*8000 Hz"):
        CropDataset(d, 0.5)[0]


def test_length_mismatch(tmp_path):
    d = make_data_dir(tmp_path / "d", num_utts=2)
    path = data_value(d, "spk1.scp", 2)
    x, rate = sf.read(path)
    sf.write(path, x[:-100], rate)
    with pytest.raises(DataError) as err:
        DataDir(d).check_audio(16000)
    assert f"{d / 'spk1.scp'}:2" in str(err.value) and "15900 samples" in str(err.value)
    with pytest.raises(DataError, match=r"spk1.scp:2: .*15900 samples"):
        CropDataset(d, 0.5)[1]


def test_empty_list(tmp_path):
    d = make_data_dir(tmp_path / "d", num_utts=2)
    (d / "wav.scp").write_text("")
    with pytest.raises(DataError, match=rf"{d / 'wav.scp'}: empty list"):
        DataDir(d)


def test_malformed_and_duplicate_lines(tmp_path):
    scp = tmp_path / "x.scp"
    scp.write_text("a /x.wav\nbroken\n")
    with pytest.raises(DataError, match=rf"{scp}:2: expected"):
        read_scp(scp)
    scp.write_text("a /x.wav\nb /y.wav\na /z.wav\n")
    with pytest.raises(DataError, match=rf"{scp}:3: duplicate key 'a' \(first on line 1\)"):
        read_scp(scp)


def test_keys_must_match(tmp_path):
    d = make_data_dir(tmp_path / "d", num_utts=3)
    (d / "spk1.scp").write_text("\n".join(_lines(d / "spk1.scp")[:2]) + "\n")
    with pytest.raises(DataError, match=r"spk1.scp: no entry for utterance"):
        DataDir(d)


def test_kaldiio_ark_entries(tmp_path):
    """wav.scp may point into a Kaldi ark (read through kaldiio)."""
    import kaldiio

    d = make_data_dir(tmp_path / "d", num_utts=2)
    data = DataDir(d)
    ark, scp = tmp_path / "wav.ark", tmp_path / "ark.scp"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}", write_function="soundfile") as writer:
        for key in data.utt_ids:
            x, rate = sf.read(data.wav[key].value, dtype="int16")
            writer(key, (rate, x))
    (d / "wav.scp").write_text(scp.read_text())
    key, noisy, _ = UtteranceDataset(d)[0]
    ref, _ = sf.read(DataDir(make_data_dir(tmp_path / "e", num_utts=2)).wav[key].value, dtype="float32")
    assert noisy.shape == (1, 16000)
    assert np.abs(noisy[0].numpy() - ref).max() < 1e-3


def _noise_pool(tmp_path, lengths=(24000, 3000)):
    rng = np.random.default_rng(5)
    lines = []
    for i, n in enumerate(lengths):
        path = tmp_path / f"noise{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(n)).astype(np.float32), 16000)
        lines.append(f"n{i} {path}\n")
    (tmp_path / "noise.scp").write_text("".join(lines))
    return tmp_path / "noise.scp"


def test_mixing_dataset_snr_level_and_determinism(tmp_path):
    from sekd.data import MixingDataset

    data = make_data_dir(tmp_path / "d", num_utts=6, seconds=1.0)
    (data / "wav.scp").write_text((data / "spk1.scp").read_text())  # dynamic mixing: the input is clean speech
    scp = _noise_pool(tmp_path)
    ds = MixingDataset(data, str(scp), segment=0.5, seed=3, snr_range=(5.0, 5.0), level_range=(-25.0, -25.0))
    for i in range(len(ds)):
        mix, clean = ds[i]
        mix, clean = mix.double().numpy(), clean.double().numpy()
        assert mix.shape == (1, 8000) and clean.shape == (8000,)
        noise = mix[0] - clean
        assert 10 * np.log10(np.mean(clean**2) / np.mean(noise**2)) == pytest.approx(5.0, abs=1e-3)
        level = 20 * np.log10(np.sqrt(np.mean(mix**2)))
        assert level == pytest.approx(-25.0, abs=1e-3) or np.abs(mix).max() == pytest.approx(0.99, abs=1e-4)
    a, b = ds[2], MixingDataset(data, str(scp), 0.5, seed=3, snr_range=(5.0, 5.0), level_range=(-25.0, -25.0))[2]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # a pure function of (seed, epoch, index)
    ds.set_epoch(1)
    assert not torch.equal(ds[2][0], a[0])
    # a loud level is scaled down rather than clipped
    loud = MixingDataset(data, str(scp), 0.5, seed=3, snr_range=(0.0, 0.0), level_range=(0.0, 0.0))
    assert max(float(loud[i][0].abs().max()) for i in range(len(loud))) <= 0.99 + 1e-6


def test_mixing_dataset_repeats_short_noise(tmp_path):
    from sekd.data import MixingDataset

    data = make_data_dir(tmp_path / "d", num_utts=2, seconds=1.0)
    scp = _noise_pool(tmp_path, lengths=(3000,))  # shorter than the 8000-sample crop
    mix, clean = MixingDataset(data, str(scp), 0.5, snr_range=(0.0, 0.0), level_range=(-20.0, -20.0))[0]
    noise = (mix[0] - clean).numpy()
    assert np.allclose(noise[:3000], noise[3000:6000], atol=1e-6)
