#!/usr/bin/env bash
# Synthesize the mini_spk corpus: eSpeak NG talkers (voices, variants, pitches) speaking nonsense
# sentences, lightly noisy; writes <out_dir>/{train,valid,test} data dirs, trials for valid and test.
# valid = held-out utterances of the training talkers; test = talkers disjoint from training.
set -euo pipefail

out_dir=data
seed=0
num_train_speakers=100
num_test_speakers=20
utts_per_speaker=12
valid_utts_per_speaker=2
test_utts_per_speaker=10
snr_low=10
snr_high=30
nj=2
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="Usage: $0 [--out_dir data] [--seed 0] [--num_train_speakers 100] [--num_test_speakers 20] [--utts_per_speaker 12] ..."

. utils/parse_options.sh

python -m sekd.bin.simulate_mini_spk --out_dir "${out_dir}" --seed "${seed}" \
  --num_train_speakers "${num_train_speakers}" --num_test_speakers "${num_test_speakers}" \
  --utts_per_speaker "${utts_per_speaker}" --valid_utts_per_speaker "${valid_utts_per_speaker}" \
  --test_utts_per_speaker "${test_utts_per_speaker}" --snr_low "${snr_low}" --snr_high "${snr_high}" --nj "${nj}"
