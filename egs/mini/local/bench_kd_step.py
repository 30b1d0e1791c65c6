#!/usr/bin/env python3
"""Benchmark: what a training step of each KD method costs, side by side in one run.

Usage (in egs/mini, after stage 1): local/bench_kd_step.py [--kd_configs "conf/kd/output.yaml ..."]
                                    [--repeats 5] [--threads 1] [--batch_size 8] [--segment 2.0]

For every KD config (default: conf/kd/*.yaml) the real training code is built as stage 5
builds it (``sekd.train.trainer.Trainer`` with the config's student, its teacher config's
model with random weights saved as a checkpoint, the KD terms and their adapters), and one
batch of the training set is timed, interleaving the methods' repetitions so the machine's
drift touches all alike (median of ``--repeats``):

- student step: the student's forward, task loss, backward and optimizer step (no KD);
- teacher forward: the teacher under ``no_grad`` on the batch (its taps included);
- KD step: ``Trainer.compute_loss`` (student, teacher, every KD term) with backward and step;
- ratio: KD step / (student step + teacher forward); 1.00 means distillation costs only the
  teacher's forward pass;
- cached KD step: the same with the teacher's output and taps read from the teacher-target cache
  (``kd.cache_teacher``, filled in the warm-up round), and its ratio to the student step: 1.00
  means offline distillation costs nothing over training the student alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kd_configs", default=None, help="space-separated (default: conf/kd/*.yaml)")
    parser.add_argument("--train_dir", default="data/train")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--segment", type=float, default=2.0)
    args = parser.parse_args()
    import torch

    from sekd.distill.teacher_cache import TeacherCache
    from sekd.models import build_model
    from sekd.train.checkpoint import save_atomic
    from sekd.train.config import build_config, load_yaml
    from sekd.train.trainer import Trainer

    torch.set_num_threads(args.threads)
    kd_configs = args.kd_configs.split() if args.kd_configs else sorted(str(p) for p in Path("conf/kd").glob("*.yaml"))
    work = Path(tempfile.mkdtemp(prefix="sekd_bench_kd_"))
    opts = [
        "--data.batch_size",
        str(args.batch_size),
        "--data.segment",
        str(args.segment),
        "--train.num_threads",
        str(args.threads),
    ]
    setups = {}
    for kd in kd_configs:
        section = load_yaml(kd)["kd"]
        t_cfg = build_config([section.get("teacher_config") or "conf/teacher.yaml"])
        torch.manual_seed(0)
        teacher = build_model(t_cfg["model"]["name"], **t_cfg["model"]["args"])
        t_path = work / f"{Path(kd).stem}_teacher.pt"
        save_atomic(
            {
                "model_name": t_cfg["model"]["name"],
                "model_args": t_cfg["model"]["args"],
                "state_dict": teacher.state_dict(),
                "config": t_cfg,
            },
            t_path,
        )
        cfg = build_config([section.get("student_config") or "conf/student.yaml", kd], opts)
        cfg["kd"]["teacher"] = str(t_path)
        trainer = Trainer(cfg, args.train_dir, args.train_dir, str(work / Path(kd).stem), progress=False)
        batch = trainer.batch(range(args.batch_size))
        setups[Path(kd).stem] = (trainer, batch)

    def student_step(trainer, noisy, clean):
        loss = trainer.task.loss_fn(trainer.model(noisy), clean)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()

    def teacher_forward(trainer, noisy, clean):
        trainer.teacher_forward(noisy)

    def kd_step(trainer, noisy, clean, *ids):
        loss, _ = trainer.compute_loss(noisy, clean, *ids)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()

    def cached_kd_step(trainer, noisy, clean):  # crop ids: the cache is used (filled in the warm-up round)
        kd_step(trainer, noisy, clean, torch.arange(len(noisy)))

    for trainer, _ in setups.values():
        trainer.teacher_cache = TeacherCache()  # used only when a batch comes with crop ids
    parts = {
        "student step": student_step,
        "teacher forward": teacher_forward,
        "KD step": kd_step,
        "cached KD step": cached_kd_step,
    }
    times = {(m, p): [] for m in setups for p in parts}
    for rep in range(args.repeats + 1):  # the first round warms up and is not counted
        for method, (trainer, (noisy, clean)) in setups.items():
            for part, fn in parts.items():
                start = time.perf_counter()
                fn(trainer, noisy, clean)
                if rep:
                    times[(method, part)].append(time.perf_counter() - start)
    print(
        f"# KD step cost, batch {args.batch_size} x {args.segment:g} s, {args.threads} thread(s), "
        f"median of {args.repeats} (torch {torch.__version__})"
    )
    print(
        "| method | student | teacher | student step (s) | teacher forward (s) | KD step (s) | "
        "KD / (student + teacher) | cached KD step (s) | cached / student |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for method, (trainer, _) in setups.items():
        med = {p: statistics.median(times[(method, p)]) for p in parts}
        ratio = med["KD step"] / (med["student step"] + med["teacher forward"])
        print(
            f"| {method} | {trainer.cfg['model']['name']} | {type(trainer.teacher).__name__} | "
            f"{med['student step']:.3f} | {med['teacher forward']:.3f} | {med['KD step']:.3f} | {ratio:.2f}x | "
            f"{med['cached KD step']:.3f} | {med['cached KD step'] / med['student step']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
