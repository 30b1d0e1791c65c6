#!/usr/bin/env bash
# DNS Challenge 2020 data dirs from a clone of microsoft/DNS-Challenge (interspeech2020/master)
# in --db_dir: train (clean speech, mixed on the fly), noise_train, valid (rendered), and the
# synthetic test sets test_no_reverb, test_with_reverb. See local/data_prep.py.
set -euo pipefail

out_dir=data
db_dir=DNS-Challenge
num_valid=200
snr_low=0
snr_high=40
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="Usage: $0 [--out_dir data] [--db_dir DNS-Challenge] [--num_valid 200] [--snr_low 0] [--snr_high 40]"

. utils/parse_options.sh

if [ ! -d "${db_dir}/datasets" ]; then
  echo "data.sh: ${db_dir}/datasets not found. Clone the corpus first:" >&2
  echo "  git clone -b interspeech2020/master https://github.com/microsoft/DNS-Challenge ${db_dir}" >&2
  exit 1
fi
python local/data_prep.py --db_dir "${db_dir}" --out_dir "${out_dir}" --num_valid "${num_valid}" \
  --snr_low "${snr_low}" --snr_high "${snr_high}"
