#!/usr/bin/env bash
# Synthesize the mini FOA corpus: the mini corpus's eSpeak NG speech and synthetic noises, each
# rendered as a point source in a simulated room (pyroomacoustics) onto a tetrahedral 4-capsule
# microphone converted to first-order Ambisonics (ACN/SN3D: W, Y, Z, X), with the direct-path
# speech at the array centre as the mono target (sekd/data/synth/room.py). Writes
# <out_dir>/{train,valid,test} Kaldi data dirs: wav.scp 4-channel, spk1.scp mono, noise1.scp
# 4-channel, utt2rt60, utt2distance, and the usual utt2spk/spk2utt/utt2dur/text.
set -euo pipefail

out_dir=data
seed=0
num_train=1000
num_valid=50
num_test=100
num_train_speakers=40
num_valid_speakers=5
num_test_speakers=10
snr_low=0     # dB on W; reverberation (RT60 0.2-0.6 s) is the other half of the degradation
snr_high=20
nj=2
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="Usage: $0 [--out_dir data] [--seed 0] [--num_train N] [--num_valid N] [--num_test N] ..."

. utils/parse_options.sh

python -m sekd.bin.simulate_mini --array foa --out_dir "${out_dir}" --seed "${seed}" \
  --num_train "${num_train}" --num_valid "${num_valid}" --num_test "${num_test}" \
  --num_train_speakers "${num_train_speakers}" --num_valid_speakers "${num_valid_speakers}" \
  --num_test_speakers "${num_test_speakers}" --snr_low "${snr_low}" --snr_high "${snr_high}" --nj "${nj}"
