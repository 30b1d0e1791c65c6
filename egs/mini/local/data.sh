#!/usr/bin/env bash
# Synthesize the mini corpus: eSpeak NG speech in many voices mixed with several noise
# types at -5..15 dB SNR; writes <out_dir>/{train,valid,test} Kaldi data dirs.
set -euo pipefail

out_dir=data
seed=0
num_train=1000
num_valid=50
num_test=100
num_train_speakers=40
num_valid_speakers=5
num_test_speakers=10
snr_low=-5
snr_high=15
nj=2
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="Usage: $0 [--out_dir data] [--seed 0] [--num_train N] [--num_valid N] [--num_test N] ..."

. utils/parse_options.sh

python -m sekd.bin.simulate_mini --out_dir "${out_dir}" --seed "${seed}" \
  --num_train "${num_train}" --num_valid "${num_valid}" --num_test "${num_test}" \
  --num_train_speakers "${num_train_speakers}" --num_valid_speakers "${num_valid_speakers}" \
  --num_test_speakers "${num_test_speakers}" --snr_low "${snr_low}" --snr_high "${snr_high}" --nj "${nj}"
