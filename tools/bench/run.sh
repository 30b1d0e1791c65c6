#!/usr/bin/env bash
# The speed benchmark, one command (make bench): every paper-size preset and mini config
# (RTF on 1 and 2 threads at 4 s and 20 s, the MAC-bound RTF from a sgemm rate measured in
# the same run, the ratio, a training step), every mini KD method's step (student step,
# teacher forward, KD step, cached KD step), and streaming against offline for the causal
# students. Tables go to docs/bench/ (docs/models.md quotes them). Needs an idle machine:
# other load changes every figure; the ratios inside one table are what to read.
# Usage: tools/bench/run.sh [out_dir] [--quick]   (--quick: 1 s inputs, 1 repeat, two configs; a smoke run)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(realpath -m "${1:-${root}/docs/bench}")
quick=${2:-}
python=${PYTHON:-${root}/tools/venv/bin/python}
[ -x "${python}" ] || python=python3
mkdir -p "${out}"
cd "${root}"
log() { echo "bench: $*" >&2; }

if [ "${quick}" = --quick ]; then
  profile_opts=(--config egs/mini/conf/student.yaml --config egs/mini/conf/student_manner.yaml --seconds 1
    --repeats 1 --train_seconds 0.5 --train_batch 2)
  kd_opts=(--kd_configs conf/kd/output.yaml --repeats 1 --batch_size 2 --segment 0.5)
  stream_configs=(conf/student.yaml)
  stream_opts=(--seconds 1 --repeats 1)
else
  profile_opts=(--all_presets --seconds 4 20)
  for conf in egs/mini/conf/*.yaml; do profile_opts+=(--config "${conf}"); done
  kd_opts=(--repeats 5)
  stream_configs=(conf/student.yaml ../TEMPLATE/conf/distil_dccrn_student.yaml ../TEMPLATE/conf/dpdcrn_student_causal.yaml)
  stream_opts=(--seconds 10 --repeats 3)
fi

log "model profiles -> ${out}/profile.md"
"${python}" -m sekd.bin.profile "${profile_opts[@]}" --sgemm --train_step --no_memory --md "${out}/profile.md.tmp"
mv "${out}/profile.md.tmp" "${out}/profile.md"

cd egs/mini
if [ ! -s data/train/wav.scp ]; then
  log "no egs/mini/data/train: synthesizing it (./run.sh --stage 1 --stop_stage 1)"
  ./run.sh --stage 1 --stop_stage 1 > /dev/null
fi
log "KD step of each method -> ${out}/kd_step.md"
"${python}" local/bench_kd_step.py "${kd_opts[@]}" --threads 1 > "${out}/kd_step.md.tmp"
mv "${out}/kd_step.md.tmp" "${out}/kd_step.md"

log "streaming vs offline -> ${out}/streaming.md"
for conf in "${stream_configs[@]}"; do
  "${python}" local/bench_streaming.py --config "${conf}" "${stream_opts[@]}"
  echo
done > "${out}/streaming.md.tmp"
mv "${out}/streaming.md.tmp" "${out}/streaming.md"
log "done: ${out}/profile.md, kd_step.md, streaming.md"
