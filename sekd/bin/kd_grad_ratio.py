"""Suggest a KD term's weight: the ratio of its gradient to the task loss's on a warm student.

Usage (in a recipe dir, after the teacher is trained):
    python -m sekd.bin.kd_grad_ratio --kd_config conf/kd/atkl.yaml [--train_dir data/train] \\
        [--exp exp] [--warm_steps 60] [--target 0.15]

The student of the KD config (``kd.student_config``, default ``conf/student.yaml``) is
trained ``--warm_steps`` steps on the task loss alone, then, on three batches, the norms
of the gradients of the task loss and of each KD term (at weight 1) on the student's
parameters are compared. The suggested weight makes the term's gradient ``--target``
times the task's. This is how the mini recipe's KD weights were set where the paper
gives none (docs/distillation.md): once, before training, never from the results.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch


def grad_norm(value: torch.Tensor, params: list[torch.Tensor]) -> float:
    grads = torch.autograd.grad(value, params, allow_unused=True, retain_graph=True)
    return float(sum(g.pow(2).sum() for g in grads if g is not None) ** 0.5)


def main(argv: list[str] | None = None) -> int:
    from sekd.data import CropDataset
    from sekd.distill import KDContext, build_kd_term
    from sekd.distill.taps import FeatureTaps
    from sekd.models import build_model
    from sekd.train.checkpoint import load_model
    from sekd.train.config import build_config, load_yaml
    from sekd.train.losses import build_loss

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kd_config", required=True)
    parser.add_argument("--train_dir", default="data/train")
    parser.add_argument("--exp", default="exp", help="where the teacher system is (exp/<teacher>/checkpoints/best.pt)")
    parser.add_argument("--warm_steps", type=int, default=60)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    kd = load_yaml(args.kd_config).get("kd") or {}
    student_conf = kd.get("student_config") or "conf/student.yaml"
    teacher_ckpt = Path(args.exp) / Path(kd.get("teacher_config") or "conf/teacher.yaml").stem / "checkpoints/best.pt"
    cfg = build_config([student_conf, args.kd_config])
    torch.manual_seed(args.seed)
    data = CropDataset(args.train_dir, cfg["data"]["segment"], cfg["data"]["sample_rate"], args.seed)
    student = build_model(cfg["model"]["name"], **cfg["model"]["args"])
    teacher, _ = load_model(teacher_ckpt)
    task_loss = build_loss(**cfg["loss"])
    params = list(student.parameters())
    opt = torch.optim.Adam(params, lr=float(cfg["optim"].get("lr", 1e-3)))

    def batch():
        idx = torch.randint(0, len(data), (int(cfg["data"]["batch_size"]),)).tolist()
        return (torch.stack(x) for x in zip(*[data[i] for i in idx]))

    for _ in range(args.warm_steps):
        noisy, clean = batch()
        loss = task_loss(student(noisy), clean, noisy)
        opt.zero_grad()
        loss.backward()
        opt.step()
    batches = [tuple(batch()) for _ in range(args.batches)]
    print(f"{args.kd_config}: student {student_conf} after {args.warm_steps} steps, teacher {teacher_ckpt}")
    for term_cfg in cfg["kd"]["terms"]:
        term = build_kd_term(term_cfg["name"], **term_cfg.get("args", {}))
        ratios = []
        for noisy, clean in batches:
            with FeatureTaps(student, term.student_taps()) as s_taps:
                est = student(noisy)
            with torch.no_grad(), FeatureTaps(teacher, term.teacher_taps()) as t_taps:
                t_est = teacher(noisy)
            value = term(KDContext(noisy, clean, est, t_est, s_taps.features, t_taps.features))
            ratios.append(grad_norm(value, params) / max(grad_norm(task_loss(est, clean, noisy), params), 1e-12))
        ratio = sum(ratios) / len(ratios)
        print(f"  {term_cfg['name']}: gradient ratio at weight 1: {ratio:.4g}; configured weight "
              f"{term_cfg.get('weight', 1.0)} -> {ratio * float(term_cfg.get('weight', 1.0)):.3g}; "
              f"weight for {args.target}: {args.target / max(ratio, 1e-12):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
