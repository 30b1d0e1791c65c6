#!/usr/bin/env bash
# L3DAS23 task 1 data dirs (data/{train,valid,test}, test = the dev set) from the unpacked
# L3DAS23_Task1_{train100,train360,dev} folders in --db_dir. See local/data_prep.py.
set -euo pipefail

out_dir=data
db_dir=L3DAS23
train_sets=train100      # or "train100 train360"
mics=A                   # A: 4-channel FOA input; AB: both mics, 8 channels (set in_channels: 8 in conf/)
nj=2
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="Usage: $0 [--out_dir data] [--db_dir L3DAS23] [--train_sets 'train100 train360'] [--mics A|AB]"

. utils/parse_options.sh

python local/data_prep.py --db_dir "${db_dir}" --out_dir "${out_dir}" --train_sets "${train_sets}" \
  --mics "${mics}" --nj "${nj}"
