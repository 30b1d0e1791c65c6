"""Tests of the Kaldi-style shell helpers in utils/ (parse_options.sh, run.pl, utt2spk/spk2utt conversion
(what fix_data_dir.sh runs), validate_data_dir.sh, fix_data_dir.sh) and a shellcheck pass."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UTILS = ROOT / "utils"


def run(
    args: list[str | Path], cwd: Path | None = None, stdin: str | None = None, check: bool = False
) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


# ---------------------------------------------------------------- parse_options.sh

CALLER = """#!/usr/bin/env bash
set -euo pipefail
stage=0
use_gpu=false
foo_bar=default
help_message="Usage: caller.sh [options] <in> <out>"
. "{utils}/parse_options.sh"
echo "stage=$stage"
echo "use_gpu=$use_gpu"
echo "foo_bar=$foo_bar"
echo "nargs=$#"
for a in "$@"; do echo "arg=$a"; done
"""


@pytest.fixture
def caller(tmp_path: Path) -> Path:
    script = tmp_path / "caller.sh"
    script.write_text(CALLER.format(utils=UTILS))
    script.chmod(0o755)
    return script


def parse_vars(stdout: str) -> tuple[dict[str, str], list[str]]:
    values, args = {}, []
    for line in stdout.splitlines():
        key, _, value = line.partition("=")
        if key == "arg":
            args.append(value)
        else:
            values[key] = value
    return values, args


def test_parse_options_sets_known_variables(caller: Path) -> None:
    proc = run([caller, "--stage", "3", "--foo-bar", "x y", "--use_gpu", "true", "in", "out"], check=True)
    values, args = parse_vars(proc.stdout)
    assert values == {"stage": "3", "use_gpu": "true", "foo_bar": "x y", "nargs": "2"}
    assert args == ["in", "out"]


def test_parse_options_underscore_and_equals_forms(caller: Path) -> None:
    proc = run([caller, "--foo_bar=a=b", "--stage=7", "pos"], check=True)
    values, args = parse_vars(proc.stdout)
    assert values["foo_bar"] == "a=b" and values["stage"] == "7"
    assert args == ["pos"]


def test_parse_options_unknown_option_fails(caller: Path) -> None:
    proc = run([caller, "--no-such-thing", "1", "in"])
    assert proc.returncode == 1
    assert "parse_options.sh: invalid option --no-such-thing" in proc.stderr
    assert "stage=" not in proc.stdout


def test_parse_options_stops_at_first_positional(caller: Path) -> None:
    proc = run([caller, "--stage", "2", "in", "--stage", "5", "last arg"], check=True)
    values, args = parse_vars(proc.stdout)
    assert values["stage"] == "2"
    assert args == ["in", "--stage", "5", "last arg"]


def test_parse_options_boolean_check(caller: Path) -> None:
    proc = run([caller, "--use-gpu", "yes"])
    assert proc.returncode == 1
    assert "--use-gpu" in proc.stderr and "true or false" in proc.stderr
    ok = run([caller, "--use-gpu", "false"], check=True)
    assert parse_vars(ok.stdout)[0]["use_gpu"] == "false"


def test_parse_options_missing_value_fails(caller: Path) -> None:
    proc = run([caller, "--stage"])
    assert proc.returncode == 1 and "--stage" in proc.stderr


def test_parse_options_help(caller: Path) -> None:
    proc = run([caller, "--help"])
    assert proc.returncode == 0
    assert "Usage: caller.sh [options] <in> <out>" in proc.stdout
    assert "stage=" not in proc.stdout


def test_parse_options_config_file(caller: Path, tmp_path: Path) -> None:
    conf = tmp_path / "opts.conf"
    conf.write_text("# a comment\nstage=4\nfoo_bar=from_config\n")
    proc = run([caller, "--config", conf, "--stage", "9", "x"], check=True)
    values, args = parse_vars(proc.stdout)
    assert values["stage"] == "9"  # the command line overrides the config file
    assert values["foo_bar"] == "from_config"
    assert args == ["x"]
    missing = run([caller, "--config", tmp_path / "nope.conf"])
    assert missing.returncode == 1 and "nope.conf" in missing.stderr


# ---------------------------------------------------------------- run.pl

RUN_PL = UTILS / "run.pl"


def test_run_pl_job_array(tmp_path: Path) -> None:
    proc = run([RUN_PL, "JOB=1:3", tmp_path / "log/echo.JOB.log", "echo job JOB of 3 | tr a-z A-Z; echo to-stderr >&2"])
    assert proc.returncode == 0, proc.stderr
    for j in (1, 2, 3):
        text = (tmp_path / f"log/echo.{j}.log").read_text()
        lines = text.splitlines()
        assert lines[0] == f"# echo job {j} of 3 | tr a-z A-Z; echo to-stderr >&2"
        assert lines[1].startswith("# Started at ")
        assert f"JOB {j} OF 3" in lines and "to-stderr" in lines
        assert re.fullmatch(r"# Accounting: time=\d+ threads=1", lines[-2])
        assert re.match(r"# Ended \(code 0\) at ", lines[-1])
    assert not (tmp_path / "log/echo.4.log").exists()


def test_run_pl_failure(tmp_path: Path) -> None:
    proc = run([RUN_PL, "JOB=1:3", tmp_path / "log/f.JOB.log", "[ JOB -ne 2 ] || exit 3"])
    assert proc.returncode == 1
    assert f"run.pl: 1 / 3 failed, log is in {tmp_path}/log/f.*.log" in proc.stderr
    assert "# Ended (code 3)" in (tmp_path / "log/f.2.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "log/f.1.log").read_text()


def test_run_pl_max_jobs_run_serializes(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    proc = run(
        [
            RUN_PL,
            "--max-jobs-run",
            "1",
            "JOB=1:4",
            tmp_path / "log/s.JOB.log",
            f"echo start >> {trace}; sleep 0.05; echo end >> {trace}",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    assert trace.read_text().split() == ["start", "end"] * 4  # never two jobs at once
    assert all((tmp_path / f"log/s.{j}.log").is_file() for j in range(1, 5))


def test_run_pl_single_job_words_and_ignored_options(tmp_path: Path) -> None:
    log = tmp_path / "one.log"
    proc = run(
        [
            RUN_PL,
            "--gpu",
            "1",
            "--mem",
            "4G",
            "--num-threads",
            "2",
            "--config",
            "conf/queue.conf",
            log,
            "printf",
            "%s,",
            "a b",
            "c",
            "|",
            "tr",
            "a-z",
            "A-Z",
        ]
    )  # as typed in a shell: c \| tr
    assert proc.returncode == 0, proc.stderr
    lines = log.read_text().splitlines()
    assert lines[0] == '# printf %s, "a b" c | tr a-z A-Z'
    assert "A B,C," in lines  # "a b" stayed one argument, the (escaped) pipe is a pipe
    assert lines[-2].endswith("threads=2")
    bad = run([RUN_PL, log, "false"])
    assert bad.returncode == 1 and "1 / 1 failed" in bad.stderr


def test_run_pl_usage_errors(tmp_path: Path) -> None:
    assert run([RUN_PL, "--bogus", "1", tmp_path / "x.log", "true"]).returncode == 1
    same_log = run([RUN_PL, "JOB=1:2", tmp_path / "x.log", "true"])
    assert same_log.returncode == 1 and "JOB" in same_log.stderr
    assert run([RUN_PL, tmp_path / "x.log"]).returncode == 1


# ---------------------------------------------------------------- utt2spk <-> spk2utt


def test_utt2spk_spk2utt_round_trip(tmp_path: Path) -> None:
    utt2spk = "u1 s2\nu2 s1\nu3 s2\nu4 s3\nu5 s1\n"
    spk2utt = run([UTILS / "utt2spk_to_spk2utt.pl"], stdin=utt2spk, check=True).stdout
    assert spk2utt == "s2 u1 u3\ns1 u2 u5\ns3 u4\n"  # speakers by first appearance
    f = tmp_path / "spk2utt"
    f.write_text(spk2utt)
    back = run([UTILS / "spk2utt_to_utt2spk.pl", f], check=True).stdout
    assert sorted(back.splitlines()) == sorted(utt2spk.splitlines())
    bad = run([UTILS / "utt2spk_to_spk2utt.pl"], stdin="u1 s1 extra\n")
    assert bad.returncode == 1 and "line 1" in bad.stderr
    assert run([UTILS / "spk2utt_to_utt2spk.pl"], stdin="lonely_speaker\n").returncode == 1


# ---------------------------------------------------------------- validate / fix data dir

VALIDATE = UTILS / "validate_data_dir.sh"
FIX = UTILS / "fix_data_dir.sh"


def write_data_dir(d: Path, num_utts: int = 6) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    utts = [(f"spk{i % 2}_utt{i:02d}", f"spk{i % 2}") for i in range(num_utts)]
    utts.sort()
    (d / "wav.scp").write_text("".join(f"{u} /corpus/noisy/{u}.wav\n" for u, _ in utts))
    (d / "spk1.scp").write_text("".join(f"{u} /corpus/clean/{u}.wav\n" for u, _ in utts))
    (d / "noise1.scp").write_text("".join(f"{u} /corpus/noise/{u}.wav\n" for u, _ in utts))
    (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utts))
    (d / "utt2dur").write_text("".join(f"{u} {1.5 + i:.2f}\n" for i, (u, _) in enumerate(utts)))
    spk2utt: dict[str, list[str]] = {}
    for u, s in utts:
        spk2utt.setdefault(s, []).append(u)
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return d


def swap_first_lines(f: Path) -> None:
    lines = f.read_text().splitlines(keepends=True)
    lines[0], lines[1] = lines[1], lines[0]
    f.write_text("".join(lines))


def test_validate_good_dir(tmp_path: Path) -> None:
    d = write_data_dir(tmp_path / "data")
    proc = run([VALIDATE, d])
    assert proc.returncode == 0, proc.stderr
    assert f"validate_data_dir.sh: Successfully validated data-directory {d}" in proc.stdout


def _unsorted(d: Path) -> str:
    swap_first_lines(d / "wav.scp")
    return "wav.scp"


def _duplicate(d: Path) -> str:
    f = d / "utt2spk"
    lines = f.read_text().splitlines(keepends=True)
    f.write_text("".join(lines[:1] + lines))
    return "utt2spk"


def _mismatch(d: Path) -> str:
    f = d / "spk1.scp"
    f.write_text("".join(f.read_text().splitlines(keepends=True)[:-1]))
    return "spk1.scp"


def _missing_spk1(d: Path) -> str:
    (d / "spk1.scp").unlink()
    return "spk1.scp"


def _empty(d: Path) -> str:
    (d / "noise1.scp").write_text("")
    return "noise1.scp"


def _bad_duration(d: Path) -> str:
    f = d / "utt2dur"
    f.write_text(re.sub(r" [0-9.]+\n", " -1\n", f.read_text(), count=1))
    return "utt2dur"


def _spk2utt_inconsistent(d: Path) -> str:
    f = d / "spk2utt"
    f.write_text(f.read_text().replace("spk1_utt01 ", "", 1))
    return "spk2utt"


def _numeric_unsorted(d: Path) -> str:
    # "10" sorts before "9" in C order; a numeric comparison would wrongly accept this.
    for name in ("wav.scp", "spk1.scp", "noise1.scp", "utt2spk", "utt2dur", "spk2utt"):
        (d / name).unlink()
    (d / "wav.scp").write_text("9 a\n10 b\n")
    return "wav.scp"


@pytest.mark.parametrize(
    "corrupt",
    [_unsorted, _duplicate, _mismatch, _missing_spk1, _empty, _bad_duration, _spk2utt_inconsistent, _numeric_unsorted],
)
def test_validate_detects_problems(tmp_path: Path, corrupt) -> None:
    d = write_data_dir(tmp_path / "data")
    name = corrupt(d)
    proc = run([VALIDATE, d])
    assert proc.returncode == 1
    assert f"validate_data_dir.sh: {d}/{name}:" in proc.stderr, proc.stderr
    assert "Successfully" not in proc.stdout


def test_validate_reports_line_number(tmp_path: Path) -> None:
    d = write_data_dir(tmp_path / "data")
    f = d / "utt2spk"
    lines = f.read_text().splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]
    f.write_text("".join(lines))
    proc = run([VALIDATE, d])
    assert proc.returncode == 1 and "(line 4)" in proc.stderr, proc.stderr


def test_validate_options(tmp_path: Path) -> None:
    d = write_data_dir(tmp_path / "data")
    (d / "spk1.scp").unlink()
    assert run([VALIDATE, "--no-spk1", d]).returncode == 0
    _bad_duration(d)
    assert run([VALIDATE, "--no-spk1", d]).returncode == 1
    assert run([VALIDATE, "--no-spk1", "--no-utt2dur", d]).returncode == 0
    assert run([VALIDATE, "--bogus", d]).returncode == 1
    assert run([VALIDATE, tmp_path / "absent"]).returncode == 1


def test_fix_data_dir(tmp_path: Path) -> None:
    d = write_data_dir(tmp_path / "data")
    good = {name: (d / name).read_text() for name in ("wav.scp", "spk1.scp", "utt2spk", "spk2utt")}
    # Reverse wav.scp, duplicate a line, add an utterance known only to wav.scp,
    # drop one from spk1.scp, give another a zero duration, remove spk2utt.
    wav = (d / "wav.scp").read_text().splitlines(keepends=True)
    (d / "wav.scp").write_text("".join(reversed(wav + [wav[0], "zzz_extra /x.wav\n"])))
    spk1 = (d / "spk1.scp").read_text().splitlines(keepends=True)
    dropped = spk1.pop(1).split()[0]
    (d / "spk1.scp").write_text("".join(spk1))
    dur = (d / "utt2dur").read_text().splitlines()
    zero = dur[2].split()[0]
    dur[2] = f"{zero} 0"
    (d / "utt2dur").write_text("\n".join(dur) + "\n")
    (d / "spk2utt").unlink()
    assert run([VALIDATE, d]).returncode == 1

    proc = run([FIX, d])
    assert proc.returncode == 0, proc.stderr
    assert "Successfully validated" in proc.stdout
    kept = [line.split()[0] for line in good["wav.scp"].splitlines() if line.split()[0] not in (dropped, zero)]
    for name in ("wav.scp", "spk1.scp", "noise1.scp", "utt2spk", "utt2dur"):
        assert [line.split()[0] for line in (d / name).read_text().splitlines()] == kept, name
    assert (d / "wav.scp").read_text() == "".join(
        line + "\n" for line in good["wav.scp"].splitlines() if line.split()[0] in kept
    )
    removed = (d / ".backup" / "removed_utts").read_text().split()
    assert sorted(removed) == sorted([dropped, zero, "zzz_extra"])
    assert "zzz_extra" in (d / ".backup" / "wav.scp").read_text()  # original kept
    assert run([VALIDATE, d]).returncode == 0


# ---------------------------------------------------------------- static checks


def _shell_scripts() -> list[Path]:
    found: dict[Path, Path] = {}  # symlinks (egs/*/enh.sh -> TEMPLATE) are checked at their target
    for top in (ROOT / "utils", ROOT / "egs", ROOT / "tools"):
        for dirpath, dirnames, filenames in os.walk(top):  # does not descend into egs/*/utils symlinks
            dirnames[:] = [d for d in dirnames if d != "venv"]  # tools/venv: installed packages
            for name in filenames:
                p = Path(dirpath) / name
                if name.endswith(".sh") and p.is_file() and not p.is_symlink():
                    found.setdefault(p.resolve(), p)
    return sorted(found.values())


def test_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    scripts = _shell_scripts()
    assert (ROOT / "utils" / "parse_options.sh") in scripts and (ROOT / "tools" / "bench" / "run.sh") in scripts
    # The repository's .shellcheckrc applies (sourced files are checked on their own).
    proc = run([shellcheck, *scripts], cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_perl_scripts_compile() -> None:
    perl = shutil.which("perl")
    if perl is None:
        pytest.skip("perl is not installed")
    scripts = sorted(UTILS.glob("*.pl"))
    assert len(scripts) >= 3
    for script in scripts:
        proc = run([perl, "-c", script])
        assert proc.returncode == 0, proc.stderr


def test_scripts_are_executable() -> None:
    for script in [*UTILS.glob("*.pl"), *UTILS.glob("*.sh")]:
        if script.name == "parse_options.sh":
            continue  # sourced, not executed
        assert os.access(script, os.X_OK), f"{script} is not executable"


# ---------------------------------------------------------------- slurm.pl

SLURM_PL = UTILS / "slurm.pl"
# A stand-in for sbatch: records its arguments, then runs the batch script once per array
# index (as Slurm would, with SLURM_ARRAY_TASK_ID set) and fails if any task failed.
FAKE_SBATCH = r"""#!/usr/bin/env bash
echo "$@" >> "$SBATCH_CALLS"
script="${@: -1}"
range=$(printf '%s\n' "$@" | sed -n 's/^--array=\([0-9]*-[0-9]*\).*/\1/p')
rc=0
for i in $(seq "${range%-*}" "${range#*-}"); do SLURM_ARRAY_TASK_ID=$i bash "$script" || rc=1; done
exit $rc
"""


def _fake_sbatch(tmp_path: Path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    import os

    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SBATCH_CALLS=str(tmp_path / "calls"))


def test_slurm_pl_submits_the_mapped_options(tmp_path: Path) -> None:
    env = _fake_sbatch(tmp_path)
    proc = subprocess.run(
        [
            str(SLURM_PL),
            "--gpu",
            "2",
            "--mem",
            "4G",
            "--num-threads",
            "3",
            "--max-jobs-run",
            "2",
            "JOB=1:3",
            str(tmp_path / "log/t.JOB.log"),
            "echo task JOB",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    call = (tmp_path / "calls").read_text().split()
    assert call[:3] == ["--export=PATH", "--ntasks-per-node=1", "--wait"]
    joined = " ".join(call)
    for expected in ("-p gpu --gres=gpu:2", "--mem-per-cpu 4G", "--cpus-per-task 3", "--array=1-3%2"):
        assert expected in joined, joined
    for j in (1, 2, 3):
        lines = (tmp_path / f"log/t.{j}.log").read_text().splitlines()
        assert lines[0] == "# echo task ${SLURM_ARRAY_TASK_ID}" and f"task {j}" in lines
        assert lines[-1].startswith("# Ended (code 0)")


def test_slurm_pl_config_defaults_and_failures(tmp_path: Path) -> None:
    env = _fake_sbatch(tmp_path)
    conf = tmp_path / "conf" / "slurm.conf"
    conf.parent.mkdir()
    conf.write_text(
        "command sbatch --export=PATH -p cpu\noption gpu=0\noption gpu=* --gres=gpu:$0\n"
        "default gpu=0\noption mem=* --mem $0\n"
    )
    # conf/slurm.conf of the recipe dir is used by default; --gpu 0 adds nothing.
    proc = subprocess.run(
        [str(SLURM_PL), "JOB=1:2", str(tmp_path / "log/f.JOB.log"), "[ JOB -ne 2 ]"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert f"slurm.pl: 1 / 2 failed, log is in {tmp_path}/log/f.*.log" in proc.stderr
    assert (tmp_path / "calls").read_text().split()[:4] == ["--export=PATH", "-p", "cpu", "--wait"]
    # An option the config has no rule for is an error naming the config.
    bad = subprocess.run(
        [str(SLURM_PL), "--num-threads", "4", str(tmp_path / "x.log"), "true"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert bad.returncode == 1 and "conf/slurm.conf: no rule for option num_threads=4" in bad.stderr


def test_recipe_cmd_sh_switches_to_slurm(tmp_path: Path) -> None:
    env = _fake_sbatch(tmp_path)
    mini = ROOT / "egs" / "mini"
    out = subprocess.run(
        [
            "bash",
            "-c",
            "SEKD_CMD=slurm; . ./cmd.sh; echo $train_cmd; "
            "SEKD_CMD=local; . ./cmd.sh; echo $train_cmd; SEKD_CMD=pbs; . ./cmd.sh",
        ],
        capture_output=True,
        text=True,
        cwd=mini,
    )
    assert out.stdout.splitlines() == ["utils/slurm.pl --mem 8G", "utils/run.pl"]
    assert "SEKD_CMD must be local or slurm" in out.stderr
    # The recipe's conf/slurm.conf maps --gpu 1 to a GPU partition and --gpu 0 to the CPU one.
    for gpu, expected in (("1", "-p gpu --gres=gpu:1"), ("0", "-p cpu")):
        proc = subprocess.run(
            [
                str(SLURM_PL),
                "--config",
                str(mini / "conf" / "slurm.conf"),
                "--gpu",
                gpu,
                str(tmp_path / f"g{gpu}.log"),
                "true",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        assert expected in (tmp_path / "calls").read_text().splitlines()[-1]
