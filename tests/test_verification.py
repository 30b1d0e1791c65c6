"""EER and minDCF on hand-made score lists."""

from __future__ import annotations

import numpy as np
import pytest

from sekd.metrics.verification import eer, error_rates, min_dcf


def test_perfect_separation():
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    labels = np.array([1, 1, 1, 0, 0])
    assert eer(scores, labels) == 0.0
    assert min_dcf(scores, labels, 0.01) == 0.0


def test_hand_counted_eer():
    # Targets 0.9 0.7 0.4 0.3 ; non-targets 0.8 0.35 0.2 0.1.
    # Threshold 0.35: reject targets {0.3} -> P_miss 1/4; accept non-targets {0.8, 0.35} -> P_fa 2/4.
    # Threshold 0.4:  P_miss 1/4, P_fa 1/4 -> the curves meet: EER 0.25.
    scores = np.array([0.9, 0.7, 0.4, 0.3, 0.8, 0.35, 0.2, 0.1])
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    t, p_miss, p_fa = error_rates(scores, labels)
    k = list(t).index(0.4)
    assert (p_miss[k], p_fa[k]) == (0.25, 0.25)
    assert eer(scores, labels) == pytest.approx(0.25)


def test_hand_counted_min_dcf():
    scores = np.array([0.9, 0.7, 0.4, 0.3, 0.8, 0.35, 0.2, 0.1])
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    # p_target 0.5: cost = 0.5 (P_miss + P_fa) / 0.5, smallest at P_miss + P_fa = 0.5.
    assert min_dcf(scores, labels, p_target=0.5) == pytest.approx(0.5)
    # p_target 0.01: rejecting everything costs 0.01 -> normalised 1.0; accepting only the top
    # target (P_miss 3/4, P_fa 0) costs 0.0075 -> 0.75, the minimum.
    assert min_dcf(scores, labels, p_target=0.01) == pytest.approx(0.75)


def test_interpolated_eer_and_invariance():
    rng = np.random.default_rng(0)
    tar, non = rng.normal(2.0, 1.0, 2000), rng.normal(0.0, 1.0, 20000)
    scores, labels = np.concatenate([tar, non]), np.concatenate([np.ones(2000), np.zeros(20000)])
    # Two unit Gaussians 2 apart: EER = Phi(-1) = 0.1587.
    assert eer(scores, labels) == pytest.approx(0.1587, abs=0.01)
    # Any increasing map of the scores leaves both metrics unchanged.
    assert eer(np.exp(scores), labels) == pytest.approx(eer(scores, labels))
    assert min_dcf(3 * scores + 1, labels, 0.05) == pytest.approx(min_dcf(scores, labels, 0.05))
    with pytest.raises(ValueError, match="target and non-target"):
        eer(scores[:10], np.ones(10))


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_score_sv_from_trials_file_hand_counted(tmp_path):
    import json

    from sekd.bin.score_sv import main

    # The hand-counted list above as trials + scores: EER 25 %, minDCF(0.01) 0.75.
    tar, non = [0.9, 0.7, 0.4, 0.3], [0.8, 0.35, 0.2, 0.1]
    trials = [f"e{i} t{i} target" for i in range(4)] + [f"e{i} u{i} nontarget" for i in range(4)]
    scores = [f"e{i} t{i} {s}" for i, s in enumerate(tar)] + [f"e{i} u{i} {s} nontarget" for i, s in enumerate(non)]
    t, s = _write(tmp_path / "trials", trials), _write(tmp_path / "scores", scores[::-1])  # order-free
    assert main(["--trials", t, "--scores", s, "--out_dir", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["num_trials"] == 8 and result["num_targets"] == 4
    assert result["metrics"]["eer"]["mean"] == pytest.approx(25.0)
    assert result["metrics"]["mindcf_0.01"]["mean"] == pytest.approx(0.75)
    assert "| 8 | 4 | 25.000 | 0.7500 |" in (tmp_path / "out" / "result.md").read_text()
    # VoxCeleb's own format (label first) gives the same numbers.
    vox = [f"1 e{i} t{i}" for i in range(4)] + [f"0 e{i} u{i}" for i in range(4)]
    assert (
        main(["--trials", _write(tmp_path / "veri_test.txt", vox), "--scores", s, "--out_dir", str(tmp_path / "vox")])
        == 0
    )
    assert json.loads((tmp_path / "vox" / "result.json").read_text())["metrics"] == result["metrics"]


def test_score_sv_errors_name_file_and_line(tmp_path, capsys):
    from sekd.bin.score_sv import main

    t = _write(tmp_path / "trials", ["a b target", "a c maybe"])
    s = _write(tmp_path / "scores", ["a b 0.5", "a c 0.1"])
    assert main(["--trials", t, "--scores", s, "--out_dir", str(tmp_path / "o")]) == 1
    assert f"{t}:2" in capsys.readouterr().err and not (tmp_path / "o").exists()
    t = _write(tmp_path / "trials", ["a b target", "a c nontarget"])
    assert (
        main(
            [
                "--trials",
                t,
                "--scores",
                _write(tmp_path / "s2", ["a b 0.5", "a c high"]),
                "--out_dir",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert f"{tmp_path / 's2'}:2" in capsys.readouterr().err
    assert (
        main(["--trials", t, "--scores", _write(tmp_path / "s3", ["a b 0.5"]), "--out_dir", str(tmp_path / "o")]) == 1
    )
    assert "no score for 1 of 2 trials, e.g. a c" in capsys.readouterr().err and not (tmp_path / "o").exists()
