"""One metric table: the scorer, the report and the charts read name, direction, digits and gap from it."""

from __future__ import annotations

import numpy as np

from sekd.bin import report, report_rows
from sekd.bin.score import GROUPS, KNOWN
from sekd.metrics import DISPLAY, METRICS, TABLE, metric


def test_every_scorer_metric_has_one_row_and_the_views_follow_it():
    assert set(KNOWN) == {n for n, m in TABLE.items() if m.task == "se"}
    assert METRICS == {n: m.function for n, m in TABLE.items() if m.function is not None}
    assert DISPLAY["pesq_wb"] == "PESQ-WB" and DISPLAY["mindcf_0.01"] == "minDCF (0.01)"
    assert GROUPS["composite"][0] == ("csig", "cbak", "covl", "llr", "wss")
    for n, m in TABLE.items():
        assert (m.function is None) != (m.group is None) or m.task == "sv", n  # computed one way
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(16000)
    assert METRICS["sisdr"](ref, ref + 0.1 * ref, 16000) > 40


def test_report_takes_direction_digits_and_gap_from_the_table():
    lower = {n for n, m in TABLE.items() if not m.higher_is_better}
    assert lower == {"llr", "wss", "wer", "eer", "mindcf_0.01", "mindcf_0.05"}
    assert report_rows._sign("eer") == -1 and report_rows._sign("pesq_wb") == 1
    assert report._fmt("sisdr", 1.23456) == "1.23" and report._fmt("mindcf_0.05", 0.123456) == "0.1235"
    assert report._fmt("pesq_wb", 1.23456) == "1.235"
    # a user's own column: higher is better, 3 digits, named as it is, any gap shared out
    own = metric("my_score")
    assert own.display == "my_score" and own.higher_is_better and own.digits == 3 and own.min_gap == 0.0

    # the gap share respects min_gap: a 0.01 PESQ gap (below 0.02) shares nothing, a 0.4 one does
    def rows(teacher):
        return [
            {
                "system": "kd",
                "baseline": "base",
                "teacher_row": "t",
                "metrics": {"pesq_wb": 1.2},
                "runs": [{"seed": 0, "scoring": None}],
            },
            {"system": "base", "metrics": {"pesq_wb": 1.0}, "runs": []},
            {"system": "t", "metrics": {"pesq_wb": teacher}, "runs": []},
        ]

    assert report_rows.gains(rows(1.01)[0], rows(1.01), "pesq_wb")[1] is None
    gain, share = report_rows.gains(rows(1.4)[0], rows(1.4), "pesq_wb")
    assert abs(gain - 0.2) < 1e-9 and abs(share - 0.5) < 1e-9
    # lower is better: EER 5 % -> 4 % is a gain of +1
    sv = [
        {
            "system": "kd",
            "baseline": "base",
            "teacher_row": "t",
            "metrics": {"eer": 4.0},
            "runs": [{"seed": 0, "scoring": None}],
        },
        {"system": "base", "metrics": {"eer": 5.0}, "runs": []},
        {"system": "t", "metrics": {"eer": 3.0}, "runs": []},
    ]
    gain, share = report_rows.gains(sv[0], sv, "eer")
    assert gain == 1.0 and share == 0.5


def test_teacher_curve_line_uses_the_score_the_checkpoint_was_chosen_by():
    # a PESQ-selected teacher: SI-SNR peaks at epoch 1, PESQ at epoch 3; the line reports PESQ
    hist = [
        {"epoch": e, "valid_sisnr": s, "valid_pesq": p} for e, s, p in ((1, 5.0, 1.2), (2, 4.0, 1.3), (3, 3.0, 1.4))
    ]
    lines = report.teacher_lines([{"system": "t", "role": "teacher", "history": hist}])
    assert "- t: best validation PESQ-WB 1.400 at epoch 3 of 3; its last 1 epochs changed it by +0.100." in lines
    sv = [{"epoch": e, "valid_eer": v} for e, v in ((1, 9.0), (2, 7.0), (3, 8.0))]
    lines = report.teacher_lines([{"system": "s", "role": "teacher", "history": sv}])
    assert "- s: best validation EER 7.00 % at epoch 2 of 3; its last 1 epochs changed it by +1.00 %." in lines


def test_a_one_epoch_teacher_has_a_summary_but_no_learning_curve_line():
    """A teacher trained for one epoch (the recipes' tiny runs): no 'last epochs changed it' line."""
    hist = [{"epoch": 1, "valid_sisnr": 3.0}]
    assert report.teacher_lines([{"system": "t", "role": "teacher", "history": hist}]) == []
    assert report_rows.curve_line(hist, change=True) == "best validation SI-SNR 3.00 dB at epoch 1 of 1"
