#!/usr/bin/env bash
# VoiceBank-DEMAND data dirs: data/{train,valid,test} at 16 kHz from the unpacked corpus in
# --db_dir (local/download.sh fetches it). See local/data_prep.py.
set -euo pipefail

out_dir=data
db_dir=downloads
valid_speakers="p282 p287"
nj=2
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="Usage: $0 [--out_dir data] [--db_dir downloads] [--valid_speakers 'p282 p287'] [--nj 2]"

. utils/parse_options.sh

python local/data_prep.py --db_dir "${db_dir}" --out_dir "${out_dir}" --valid_speakers "${valid_speakers}" --nj "${nj}"
