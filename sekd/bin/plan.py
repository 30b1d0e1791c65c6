"""The systems a recipe trains: teachers, baseline students and KD students, one line each.

Usage: python -m sekd.bin.plan --teacher_config conf/teacher.yaml --student_config conf/student.yaml \\
           --kd_configs "conf/kd/output.yaml conf/kd/atkl.yaml" [--seeds 0,1,2]

A KD config may name the teacher and the student it pairs (``kd.teacher_config``,
``kd.student_config``, paths relative to the recipe); otherwise the recipe's defaults are
used. ``--kd_configs all`` means every ``conf/kd/*.yaml``. A system is named after its
config: ``conf/teacher_uformer.yaml`` trains ``exp/teacher_uformer``, ``conf/kd/atkl.yaml``
``exp/student_kd_atkl``. Students (baseline and KD) are trained once per seed; a seed other
than 0 adds ``_seed<N>`` to the name (teachers are trained once, with their config's seed).

Output (tab-separated, in training order)::

    teacher <system> -      <config>
    student <system> <seed> <config>
    kd      <system> <seed> <student config> <kd config> <teacher system>
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sekd.train.config import ConfigError, load_yaml


def system_name(config: str, seed: int | None = None) -> str:
    name = Path(config).stem
    return name if not seed else f"{name}_seed{seed}"


def kd_system(kd_config: str, seed: int | None = None) -> str:
    return system_name(f"student_kd_{Path(kd_config).stem}.yaml", seed)


def plan(teacher_config: str, student_config: str, kd_configs: list[str], seeds: list[int]) -> list[tuple]:
    teachers = {teacher_config: None}
    students = {student_config: None}
    kd_rows = []
    for kd in kd_configs:
        section = load_yaml(kd).get("kd") or {}
        if not isinstance(section, dict) or not section.get("terms"):
            raise ConfigError(f"{kd}: a KD config needs a kd: section with terms")
        teacher = section.get("teacher_config") or teacher_config
        student = section.get("student_config") or student_config
        for path in (teacher, student):
            if not Path(path).is_file():
                raise ConfigError(f"{kd}: names {path}, which does not exist")
        teachers.setdefault(teacher, None)
        students.setdefault(student, None)
        kd_rows.append((kd, teacher, student))
    rows = [("teacher", system_name(t), "-", t) for t in teachers]
    rows += [("student", system_name(s, seed), str(seed), s) for seed in seeds for s in students]
    rows += [("kd", kd_system(kd, seed), str(seed), s, kd, system_name(t)) for seed in seeds for kd, t, s in kd_rows]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher_config", required=True)
    parser.add_argument("--student_config", required=True)
    parser.add_argument("--kd_configs", default="", help="space-separated KD configs, or 'all' (conf/kd/*.yaml)")
    parser.add_argument("--seeds", default="0", help="comma- or space-separated seeds of the students")
    args = parser.parse_args(argv)
    kd_configs = args.kd_configs.split()
    if kd_configs == ["all"]:
        kd_configs = sorted(str(p) for p in Path(args.student_config).parent.glob("kd/*.yaml"))
    try:
        seeds = [int(s) for s in args.seeds.replace(",", " ").split()]
        rows = plan(args.teacher_config, args.student_config, kd_configs, seeds or [0])
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join("\t".join(row) for row in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
