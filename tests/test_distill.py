"""KD terms: minimum at identical features, finite on silence and batch size 1, gradients reach the
student and its adapters but never the teacher, mismatched channels/frames/bins, batch-order
invariance. Real (tiny) teacher and student models of each family the methods were published with."""

from __future__ import annotations

import copy

import pytest
import torch

from sekd.distill import KDContext, build_kd_term
from sekd.distill.features import to_bctf
from sekd.distill.taps import FeatureTaps
from sekd.models import build_model

# teacher vs student: 2x the frames (hop 64 vs 128), 2x the bins (FFT 512 vs 256), 2x the channels
DCCRN_T = {"channels": [8, 16, 16], "rnn_units": 16, "rnn_layers": 1, "win_len": 256, "hop": 64, "n_fft": 512}
DCCRN_S = {"channels": [4, 8, 8], "rnn_units": 8, "rnn_layers": 1, "win_len": 256, "hop": 128, "n_fft": 256}
UFORMER_T = {"channels": [2, 4, 4], "ff_hidden": 8, "attention_hidden": 4, "conv_hidden": 4, "dilations": [1, 2]}
MANNER_T = {"hidden": 9, "depth": 2, "kernel_size": 8, "stride": 4, "segment_len": 16}
MANNER_S = {**MANNER_T, "hidden": 6}
DPDCRN_T = {"channels": 16, "num_blocks": 2}
DPDCRN_S = {"channels": 8, "num_blocks": 1}

DCCRN_LAYERS = {"student_layers": ["encoder.1", "encoder.2"], "teacher_layers": ["encoder.1", "encoder.2"]}
DPDCRN_SETS = {
    "encoder": {"student": ["encoder.0", "encoder.1", "encoder.2"], "teacher": ["encoder.0", "encoder.1", "encoder.2"]},
    "middle": {"student": ["dual_path.mid.0"], "teacher": ["dual_path.mid.0", "dual_path.mid.1"]},
    "decoder": {"student": ["decoder.0", "decoder.1"], "teacher": ["decoder.0", "decoder.1"]},
}

# (method, args, teacher (name, args), student (name, args))
CASES = {
    "output": ({"domain": "both"}, ("dccrn", DCCRN_T), ("dccrn", DCCRN_S)),
    "fitnet": ({**DCCRN_LAYERS, "student_layout": "BCFT"}, ("dccrn", DCCRN_T), ("dccrn", DCCRN_S)),
    "at": (dict(DCCRN_LAYERS), ("dccrn", DCCRN_T), ("dccrn", DCCRN_S)),
    "atkl": (
        {
            "student_layers": ["encoder.0", "encoder.2", "decoder.0"],
            "teacher_layers": ["encoder.0", "encoder.2", "decoder.0"],
        },
        ("uformer", UFORMER_T),
        ("dccrn", DCCRN_S),
    ),
    "mvat": (
        {"student_blocks": ["encoder.0.attention", "encoder.1.attention", "decoder.0.attention"]},
        ("manner", MANNER_T),
        ("manner", MANNER_S),
    ),
    "tfckd": (
        {
            "student_layers": ["encoder.0", "encoder.2", "dual_path.mid.0", "decoder.1"],
            "teacher_layers": ["encoder.0", "dual_path.mid.0", "dual_path.mid.1", "decoder.1"],
        },
        ("dpdcrn", DPDCRN_T),
        ("dpdcrn", DPDCRN_S),
    ),
    "i2srf_tfckd": ({"sets": DPDCRN_SETS, "fusion_channels": 8}, ("dpdcrn", DPDCRN_T), ("dpdcrn", DPDCRN_S)),
    "mtakd": ({"feature_layers": {**DCCRN_LAYERS, "student_layout": "BCFT"}}, ("dccrn", DCCRN_T), ("dccrn", DCCRN_S)),
}


def _models(method: str, seed: int = 0):
    _, (t_name, t_args), (s_name, s_args) = CASES[method]
    torch.manual_seed(seed)
    teacher = build_model(t_name, **t_args).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = build_model(s_name, **s_args).eval()
    return teacher, student


def _loss(term, teacher, student, noisy, clean):
    with FeatureTaps(student, term.student_taps()) as s_taps:
        est = student(noisy)
    with torch.no_grad(), FeatureTaps(teacher, term.teacher_taps()) as t_taps:
        t_est = teacher(noisy)
    return term(KDContext(noisy, clean, est, t_est, s_taps.features, t_taps.features))


def _batch(b: int = 3, seconds: float = 0.5, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    clean = 0.3 * torch.randn(b, int(16000 * seconds), generator=g).cumsum(-1).sin()
    noisy = clean[:, None] + 0.1 * torch.randn(b, 1, clean.shape[-1], generator=g)
    return noisy, clean


@pytest.mark.parametrize("method", sorted(CASES))
def test_gradients_reach_student_and_adapters_never_teacher(method):
    teacher, student = _models(method)
    term = build_kd_term(method, **CASES[method][0])
    noisy, clean = _batch()
    _loss(term, teacher, student, noisy, clean)  # first batch creates the adapters
    loss = _loss(term, teacher, student, noisy, clean)
    assert torch.isfinite(loss) and loss.item() != 0
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    reached = [n for n, p in student.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert reached, "no student parameter got a gradient"
    for name, p in term.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"{method}: {name} got no gradient"


@pytest.mark.parametrize("method", sorted(CASES))
def test_finite_on_silence_and_batch_of_one(method):
    teacher, student = _models(method)
    term = build_kd_term(method, **CASES[method][0])
    silent = torch.zeros(1, 1, 8000)
    loss = _loss(term, teacher, student, silent, silent[:, 0])
    assert torch.isfinite(loss), loss
    loss.backward()
    for name, p in list(student.named_parameters()) + list(term.named_parameters()):
        assert p.grad is None or torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("method", sorted(CASES))
def test_invariant_to_batch_order(method):
    teacher, student = _models(method)
    term = build_kd_term(method, **CASES[method][0])
    noisy, clean = _batch(4)
    _loss(term, teacher, student, noisy, clean)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        a = _loss(term, teacher, student, noisy, clean)
        b = _loss(term, teacher, student, noisy[perm], clean[perm])
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def _self_distillation(method: str):
    """A term between a model and an exact copy of itself (same features on both sides)."""
    args, (name, model_args), _ = CASES[method]
    args = copy.deepcopy(args)
    for key in ("student_layers", "student_blocks"):
        if key in args:
            args[key.replace("student", "teacher")] = args[key]
    if method in ONE_LAYER:  # all-pairs methods are zero only when every pair matches: one layer a side
        args.update(copy.deepcopy(ONE_LAYER[method]))
    torch.manual_seed(0)
    model = build_model(name, **model_args).eval()
    teacher = copy.deepcopy(model)
    return build_kd_term(method, **args), teacher, model


ONE_LAYER = {
    "tfckd": {"student_layers": ["encoder.2"], "teacher_layers": ["encoder.2"]},
    "i2srf_tfckd": {"sets": {"middle": {"student": ["dual_path.mid.0"], "teacher": ["dual_path.mid.0"]}}},
}


def test_tfckd_divergences_vanish_on_matching_layers_only():
    """All-pairs calibrated KD: D[i, j] = 0 exactly where student layer i equals teacher layer j."""
    from sekd.distill.tfckd import CalibratedSet

    x = [torch.randn(2, 4, 9, 16), torch.randn(2, 6, 9, 8)]
    for freq_mode in ("bins", "batch"):
        block = CalibratedSet(2, 2, bands=8, freq_mode=freq_mode)
        weights, div = block.weights_and_divergences(x, x)
        for stream in ("time", "freq"):
            d = div[stream].mean((0, 1))
            assert d[0, 0] < 1e-6 and d[1, 1] < 1e-6 and d[0, 1] > 1e-4 and d[1, 0] > 1e-4, (stream, d)
            torch.testing.assert_close(weights[stream].sum(-1), torch.ones(weights[stream].shape[:-1]))


@pytest.mark.parametrize("method", ["at", "atkl", "mvat", "tfckd", "i2srf_tfckd", "fitnet", "output"])
def test_zero_when_student_features_equal_teacher(method):
    term, teacher, student = _self_distillation(method)
    noisy, clean = _batch()
    _loss(term, teacher, student, noisy, clean)
    with torch.no_grad():
        if method == "fitnet":  # the adapters are the identity when the features are equal
            for conv in term.adapters.values():
                conv.weight.copy_(torch.eye(conv.in_channels)[:, :, None, None])
                conv.bias.zero_()
        loss = _loss(term, teacher, student, noisy, clean)
    expected = -100.0 if method == "output" else 0.0  # output: -SI-SNR of identical signals (capped by eps)
    if method == "output":
        assert loss.item() < -60
    else:
        assert abs(loss.item() - expected) < 1e-5, loss.item()
    # and positive (or larger) for a different student
    if method in ("at", "mvat", "tfckd"):
        name, args = CASES[method][2]
        assert _loss(term, teacher, build_model(name, **args).eval(), noisy, clean).item() > 1e-4


def test_mtakd_tasks_vanish_at_their_targets():
    term = build_kd_term("mtakd", teacher_confidence=False)
    noisy, clean = _batch()
    teacher_out = clean + 0.05 * torch.randn_like(clean)
    at_clean = term.task_losses(KDContext(noisy, clean, clean.clone(), teacher_out))
    at_teacher = term.task_losses(KDContext(noisy, clean, teacher_out.clone(), teacher_out))
    assert at_clean[0] < 1e-6 < at_clean[1] and at_teacher[1] < 1e-6 < at_teacher[0]


def test_mtakd_adaptive_weights_follow_the_uncertain_task():
    """Kendall weighting: the learnt log-variance of a task settles at log of its loss, so a task
    with a 10x larger loss (an uncertain teacher) gets a 10x smaller weight."""
    term = build_kd_term("mtakd")
    losses = torch.tensor([0.01, 0.1])
    opt = torch.optim.Adam([term.log_vars], lr=0.05)
    for _ in range(600):
        opt.zero_grad()
        (0.5 * torch.exp(-term.log_vars) * losses + 0.5 * term.log_vars).sum().backward()
        opt.step()
    torch.testing.assert_close(term.log_vars.detach(), losses.log(), atol=0.02, rtol=0)


def test_mtakd_teacher_confidence_discounts_bad_teacher_units():
    noisy, clean = _batch()
    good = clean + 0.01 * torch.randn_like(clean)
    bad = clean + 1.0 * torch.randn_like(clean)
    est = clean + 0.3 * torch.randn_like(clean)
    plain = build_kd_term("mtakd", teacher_confidence=False)
    confident = build_kd_term("mtakd", teacher_confidence=True)

    def ratio(term):
        return (
            term.task_losses(KDContext(noisy, clean, est, bad))[1]
            / term.task_losses(KDContext(noisy, clean, est, good))[1]
        )

    assert ratio(confident) < ratio(plain)


def test_layouts_and_errors():
    x = torch.randn(2, 3, 5, 7)  # B C F T
    assert to_bctf(x, "BCFT").shape == (2, 3, 7, 5)
    assert to_bctf(torch.randn(11, 2, 4), "TBC").shape == (2, 4, 11, 1)
    assert to_bctf((torch.randn(2, 4, 9), None), "BCT").shape == (2, 4, 9, 1)
    with pytest.raises(ValueError, match="unknown feature layout"):
        build_kd_term("at", student_layers=["a"], teacher_layers=["b"], student_layout="XYZ")
    with pytest.raises(ValueError, match="pairs layers one to one"):
        build_kd_term("fitnet", student_layers=["a", "b"], teacher_layers=["c"])
    with pytest.raises(ValueError, match="dimensions"):
        to_bctf(torch.randn(2, 3, 4), "BCFT")
    with pytest.raises(KeyError, match="unknown KD method"):
        build_kd_term("nope")


def test_mvat_maps_transfers_manners_attention_maps():
    """transfer: maps reads the global and local views' attention maps: zero for a copy of the
    teacher, positive for another student, its gradient reaches the global view's query and key
    (through the written-out map) and the local view's weights; the channel view is refused."""
    from sekd.models.manner import GlobalAttention, LocalAttention

    blocks = ["encoder.0.attention", "decoder.0.attention"]
    term = build_kd_term("mvat", student_blocks=blocks, transfer="maps")
    assert term.student_taps() == [f"{b}.{m}" for b in blocks for m in ("global_.map", "local.map")]
    torch.manual_seed(0)
    model = build_model("manner", **MANNER_T).eval()
    noisy, clean = _batch()
    assert abs(_loss(term, copy.deepcopy(model), model, noisy, clean).item()) < 1e-7
    teacher, student = _models("mvat")
    with torch.no_grad():  # freshly built, every map is near uniform: sharpen the student's
        for module in student.modules():
            if isinstance(module, (GlobalAttention, LocalAttention)):
                for p in module.parameters():
                    p.mul_(20.0)
    loss = _loss(term, teacher, student, noisy, clean)
    assert loss.item() > 1e-3
    loss.backward()
    global_view = student.encoder[0].attention.global_
    assert global_view.query.weight.grad.abs().sum() > 0 and global_view.key.weight.grad.abs().sum() > 0
    assert student.encoder[0].attention.local.depthwise[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    with pytest.raises(ValueError, match="transfer: features"):
        build_kd_term("mvat", student_blocks=blocks, transfer="maps", views=["channel", "global"])
