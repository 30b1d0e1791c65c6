#!/usr/bin/env bash
# VoxCeleb1 speaker-verification data dirs (data/{train,valid,test}, test with the VoxCeleb1-O
# cleaned trials) from the unpacked corpus in --db_dir. See local/data_prep.py.
set -euo pipefail

out_dir=data
db_dir=VoxCeleb1
trials=veri_test2.txt
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="Usage: $0 [--out_dir data] [--db_dir VoxCeleb1] [--trials veri_test2.txt]"

. utils/parse_options.sh

python local/data_prep.py --db_dir "${db_dir}" --out_dir "${out_dir}" --trials "${trials}"
