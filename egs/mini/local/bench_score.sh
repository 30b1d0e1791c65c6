#!/usr/bin/env bash
# Benchmark: scoring N mini test utterances with every intrusive metric, --nj 1 vs --nj 2
# (side by side in one run, so the ratio is what to read; the machine's noise cancels).
# Usage: local/bench_score.sh [--num_test 200] [--work_dir /tmp/sekd_bench_score]
set -euo pipefail

num_test=200
work_dir=/tmp/sekd_bench_score
metrics=pesq_wb,pesq_nb,stoi,estoi,sisdr,sdr,segsnr,csig,cbak,covl
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="Usage: $0 [--num_test 200] [--work_dir DIR] [--metrics LIST]"

. utils/parse_options.sh

python -m sekd.bin.simulate_mini --out_dir "${work_dir}/data" --num_train 0 --num_valid 0 \
  --num_test "${num_test}" --nj 2 > /dev/null
declare -A secs
for nj in 1 2; do
  start=$(date +%s.%N)
  python -m sekd.bin.score --ref_scp "${work_dir}/data/test/spk1.scp" --est_scp "${work_dir}/data/test/wav.scp" \
    --out_dir "${work_dir}/score_nj${nj}" --metrics "${metrics}" --nj "${nj}" > /dev/null
  secs[${nj}]=$(echo "$(date +%s.%N) - ${start}" | bc)
  echo "nj=${nj}: ${secs[${nj}]} s for ${num_test} utterances (${metrics})"
done
cmp -s "${work_dir}/score_nj1/result.json" "${work_dir}/score_nj2/result.json" && echo "nj=1 and nj=2 give identical results"
echo "speed-up nj=2 / nj=1: $(echo "scale=2; ${secs[1]} / ${secs[2]}" | bc)"
