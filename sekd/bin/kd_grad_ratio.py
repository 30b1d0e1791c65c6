"""Suggest a KD term's weight: the ratio of its gradient to the task loss's on a warm student.

Usage (in a recipe dir, after the teacher is trained):
    python -m sekd.bin.kd_grad_ratio --kd_config conf/kd/atkl.yaml [--config conf/cpu/common.yaml ...] \\
        [--train_dir data/train] [--valid_dir data/valid] [--exp exp] [--warm_steps 60] [--target 0.15]

The student of the KD config (``kd.student_config``, default ``conf/student.yaml``, with the
``--config`` overlays, e.g. a ``--conf_tag``'s, layered before the KD config) is built by the
training loop itself (``sekd.train.trainer.Trainer``: the same data, on-the-fly mixing included,
teacher, KD terms and adapters as a distillation run), trained ``--warm_steps`` steps on the task
loss alone, then, on ``--batches`` batches, the norms of the gradients of the task loss and of each
KD term (at weight 1) on the student's parameters are compared. The suggested weight makes the
term's gradient ``--target`` times the task's. This is how the recipes' KD weights were set where
the paper gives none (docs/distillation.md): once, before training, never from the results.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch


def grad_norm(value: torch.Tensor, params: list[torch.Tensor]) -> float:
    grads = torch.autograd.grad(value, params, allow_unused=True, retain_graph=True)
    return float(sum(g.pow(2).sum() for g in grads if g is not None) ** 0.5)


def main(argv: list[str] | None = None) -> int:
    from sekd.data import DataError
    from sekd.train.config import ConfigError, build_config, load_yaml
    from sekd.train.trainer import Trainer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kd_config", required=True)
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        help="overlay configs between the student config and the KD config (repeatable)",
    )
    parser.add_argument("--train_dir", default="data/train")
    parser.add_argument("--valid_dir", default="data/valid", help="read by the loop's set-up only")
    parser.add_argument("--exp", default="exp", help="where the teacher system is (exp/<teacher>/checkpoints/best.pt)")
    parser.add_argument("--teacher", default=None, help="teacher checkpoint (default: from --exp and the KD config)")
    parser.add_argument("--warm_steps", type=int, default=60)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    kd = load_yaml(args.kd_config).get("kd") or {}
    student_conf = kd.get("student_config") or "conf/student.yaml"
    teacher = args.teacher or str(
        Path(args.exp) / Path(kd.get("teacher_config") or "conf/teacher.yaml").stem / "checkpoints" / "best.pt"
    )
    try:
        cfg = build_config([student_conf, *args.config, args.kd_config], [f"--train.seed={args.seed}"])
        cfg["kd"]["teacher"], cfg["kd"]["weight_scale"] = teacher, 1.0
        with tempfile.TemporaryDirectory() as out:
            trainer = Trainer(cfg, args.train_dir, args.valid_dir, out, progress=False)
            if trainer.task.name != "enh":
                raise ConfigError(f"{args.kd_config}: the gradient-ratio rule is for enhancement students")
            report(trainer, args, student_conf, teacher)
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def report(trainer, args, student_conf: str, teacher: str) -> None:
    """Warm the student on the task loss, then print each KD term's gradient ratio and weight."""
    from sekd.distill import KDContext

    def batches():
        epoch = 0
        while True:
            trainer.train_set.set_epoch(epoch)
            for idx in trainer.epoch_batches(epoch):
                yield trainer.batch(idx)[:2]
            epoch += 1

    stream, task_loss = batches(), trainer.task.loss_fn
    trainer.model.train()
    for _ in range(args.warm_steps):
        noisy, clean = next(stream)
        loss = task_loss(trainer.model(noisy), clean, noisy)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
    params = list(trainer.model.parameters())
    ratios: dict[str, list[float]] = {name: [] for name in trainer.kd_names}
    for _ in range(args.batches):
        noisy, clean = next(stream)
        est, s_feats = trainer.student_forward(noisy)
        t_est, t_feats = trainer.teacher_forward(noisy)
        ctx = KDContext(noisy, clean, est, t_est, s_feats, t_feats)
        task = grad_norm(task_loss(est, clean, noisy), params)
        for name, term in zip(trainer.kd_names, trainer.kd_terms):
            ratios[name].append(grad_norm(term(ctx), params) / max(task, 1e-12))
    print(f"{args.kd_config}: student {student_conf} after {args.warm_steps} steps, teacher {teacher}")
    for term_cfg in trainer.cfg["kd"]["terms"]:
        ratio = sum(ratios[term_cfg["name"]]) / args.batches
        weight = float(term_cfg.get("weight", 1.0))
        print(
            f"  {term_cfg['name']}: gradient ratio at weight 1: {ratio:.4g}; configured weight "
            f"{weight} -> {ratio * weight:.3g}; weight for {args.target}: {args.target / max(ratio, 1e-12):.3g}"
        )


if __name__ == "__main__":
    sys.exit(main())
