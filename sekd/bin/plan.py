"""The systems a recipe trains: teachers, baseline students and KD students, one line each.

Usage: python -m sekd.bin.plan --teacher_config conf/teacher.yaml --student_config conf/student.yaml \\
           --kd_configs "conf/kd/output.yaml conf/kd/atkl.yaml" [--seeds 0,1,2] \\
           [--teacher_models "teacher=pretrained/teacher.zip"] [--exp_dir exp --json exp/plan.json]

A KD config may name the teacher and the student it pairs (``kd.teacher_config``,
``kd.student_config``, paths relative to the recipe); otherwise the recipe's defaults are
used. ``--kd_configs all`` means every ``conf/kd/*.yaml``. A system is named after its
config: ``conf/teacher_uformer.yaml`` trains ``exp/teacher_uformer``, ``conf/kd/atkl.yaml``
``exp/student_kd_atkl``. Students (baseline and KD) are trained once per seed; a seed other
than 0 adds ``_seed<N>`` to the name (teachers are trained once, with their config's seed).

**Pretrained teachers** (``--teacher_models``): ``name=path`` pairs (a checkpoint or a
``sekd-pack`` zip), or one bare path for the recipe's default teacher. Such a teacher is not
trained: stage 3 makes it a system of the recipe (``sekd.bin.import_model``).

**Ablations** (``kd.ablation: conf/ablation/<name>.yaml``): a method that adds losses that
need no teacher (``mtakd``'s TF-unit weighted ground-truth task) is compared with the same
student trained with those losses and no teacher. The ablation config is layered on the
student config and trained as a baseline student, ``<student>_ablation_<name>``, once per
seed; the KD student's baseline is then that system instead of the plain student.

Output (tab-separated, in training order, ``-`` for an empty field): ``kind system seed
config kd_config teacher baseline pretrained group``, with kind ``teacher``, ``student`` or
``kd``; ``kd_config`` of a student row is its ablation config; ``group`` is the system
without its seed suffix. ``--json`` also writes the plan as
JSON (``{"systems": [{kind, system, group, seed, config, kd_config, teacher, baseline,
pretrained, checkpoint, teacher_checkpoint}]}``): the report reads it to pair each KD student
with its baseline and teacher.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from sekd.train.config import ConfigError, load_yaml

FIELDS = ("kind", "system", "seed", "config", "kd_config", "teacher", "baseline", "pretrained", "group")


def system_name(config: str, seed: int | None = None) -> str:
    name = Path(config).stem
    return name if not seed else f"{name}_seed{seed}"


def kd_system(kd_config: str, seed: int | None = None) -> str:
    return system_name(f"student_kd_{Path(kd_config).stem}.yaml", seed)


def ablation_system(student_config: str, ablation: str, seed: int | None = None) -> str:
    return system_name(f"{Path(student_config).stem}_ablation_{Path(ablation).stem}.yaml", seed)


PRETRAINED_DIR = "<dir>"  # the key of a directory of pretrained teachers in parse_teacher_models' result


def parse_teacher_models(spec: str, default_teacher: str) -> dict[str, str]:
    """``"name=path name2=path2"`` (or one bare path: the default teacher's) -> {system: path}. A bare
    directory (``pretrained/``) is kept under ``PRETRAINED_DIR``: each teacher that has a
    ``<dir>/<teacher system>.zip`` takes it (``plan``), the others are trained."""
    models = {}
    for item in spec.split():
        if "=" not in item and Path(item).is_dir():
            if PRETRAINED_DIR in models:
                raise ConfigError(f"--teacher_models: two directories ({models[PRETRAINED_DIR]}, {item})")
            models[PRETRAINED_DIR] = item
            continue
        name, sep, path = item.partition("=")
        if not sep:
            name, path = system_name(default_teacher), item
        if not path:
            raise ConfigError(f"--teacher_models: {item!r} names no file")
        if not Path(path).is_file():
            raise ConfigError(f"--teacher_models: {path}: no such file (teacher {name})")
        models[name] = path
    return models


def plan(
    teacher_config: str,
    student_config: str,
    kd_configs: list[str],
    seeds: list[int],
    teacher_models: dict[str, str] | None = None,
) -> list[dict]:
    """The plan's rows: dicts with the keys of ``FIELDS`` (and ``group``), None where empty."""
    teacher_models = dict(teacher_models or {})
    teachers = {teacher_config: None}
    students: dict[tuple[str, str | None], None] = {(student_config, None): None}
    kd_rows = []
    for kd in kd_configs:
        section = load_yaml(kd).get("kd") or {}
        if not isinstance(section, dict) or not section.get("terms"):
            raise ConfigError(f"{kd}: a KD config needs a kd: section with terms")
        teacher = section.get("teacher_config") or teacher_config
        student = section.get("student_config") or student_config
        ablation = section.get("ablation")
        for path in (teacher, student) + ((ablation,) if ablation else ()):
            if not Path(path).is_file():
                raise ConfigError(f"{kd}: names {path}, which does not exist")
        if ablation:
            ab = load_yaml(ablation).get("kd") or {}
            if not isinstance(ab, dict) or not ab.get("terms"):
                raise ConfigError(f"{ablation} (the ablation of {kd}): needs a kd: section with terms")
            if ab.get("ablation") or ab.get("teacher_config"):
                raise ConfigError(
                    f"{ablation} (the ablation of {kd}): an ablation trains without a teacher; "
                    "it names no teacher_config and no ablation of its own"
                )
        teachers.setdefault(teacher, None)
        students.setdefault((student, ablation), None)
        kd_rows.append((kd, teacher, student, ablation))
    names = {system_name(t) for t in teachers}
    folder = teacher_models.pop(PRETRAINED_DIR, None)
    if folder:  # named files first, then <dir>/<system>.zip where there is one
        for name in names:
            if name not in teacher_models and (Path(folder) / f"{name}.zip").is_file():
                teacher_models[name] = str(Path(folder) / f"{name}.zip")
    unknown = sorted(set(teacher_models) - names)
    if unknown:
        raise ConfigError(
            f"--teacher_models names {', '.join(unknown)}, not a teacher of this recipe "
            f"(teachers: {', '.join(sorted(names))})"
        )

    def row(kind, system, group, seed=None, config=None, kd_config=None, teacher=None, baseline=None, pretrained=None):
        return {
            "kind": kind,
            "system": system,
            "group": group,
            "seed": seed,
            "config": config,
            "kd_config": kd_config,
            "teacher": teacher,
            "baseline": baseline,
            "pretrained": pretrained,
        }

    rows = [
        row("teacher", system_name(t), system_name(t), config=t, pretrained=teacher_models.get(system_name(t)))
        for t in teachers
    ]
    for seed in seeds:
        for s, ab in students:
            name = ablation_system(s, ab, seed) if ab else system_name(s, seed)
            rows.append(row("student", name, ablation_system(s, ab) if ab else system_name(s), seed, s, ab))
    for seed in seeds:
        for kd, t, s, ab in kd_rows:
            base = ablation_system(s, ab, seed) if ab else system_name(s, seed)
            rows.append(row("kd", kd_system(kd, seed), kd_system(kd), seed, s, kd, system_name(t), base))
    return rows


def with_paths(rows: list[dict], exp_dir: str) -> list[dict]:
    """Each row with the checkpoint of its system and (KD rows) of its teacher under ``exp_dir``."""
    ckpt = {r["system"]: os.path.join(exp_dir, r["system"], "checkpoints", "best.pt") for r in rows}
    return [{**r, "checkpoint": ckpt[r["system"]], "teacher_checkpoint": ckpt.get(r["teacher"])} for r in rows]


def read_plan(exp_dir: str | Path) -> dict[str, dict] | None:
    """``<exp_dir>/plan.json`` as {system: row}, or None when the recipe wrote none."""
    path = Path(exp_dir) / "plan.json"
    if not path.is_file():
        return None
    try:
        return {r["system"]: r for r in json.loads(path.read_text())["systems"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a plan written by sekd.bin.plan ({exc})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher_config", required=True)
    parser.add_argument("--student_config", required=True)
    parser.add_argument("--kd_configs", default="", help="space-separated KD configs, or 'all' (conf/kd/*.yaml)")
    parser.add_argument("--seeds", default="0", help="comma- or space-separated seeds of the students")
    parser.add_argument(
        "--teacher_models",
        default="",
        help="pretrained teachers: 'name=path ...', one path (the default teacher's), or a directory "
        "(each teacher system with a <dir>/<system>.zip takes it, the others are trained)",
    )
    parser.add_argument("--exp_dir", default="exp", help="where the systems go (the checkpoint paths of --json)")
    parser.add_argument("--json", default=None, help="also write the plan as JSON here (e.g. exp/plan.json)")
    args = parser.parse_args(argv)
    kd_configs = args.kd_configs.split()
    if kd_configs == ["all"]:
        kd_configs = sorted(str(p) for p in Path(args.student_config).parent.glob("kd/*.yaml"))
    try:
        seeds = [int(s) for s in args.seeds.replace(",", " ").split()]
        models = parse_teacher_models(args.teacher_models, args.teacher_config)
        rows = plan(args.teacher_config, args.student_config, kd_configs, seeds or [0], models)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps({"systems": with_paths(rows, args.exp_dir)}, indent=1) + "\n")
        tmp.replace(out)
    print("\n".join("\t".join("-" if r[k] is None else str(r[k]) for k in FIELDS) for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
