#!/usr/bin/env bash
# egs/dns2020: DNS Challenge, Interspeech 2020 (Reddy et al.), 16 kHz; training mixtures are made
# on the fly from the clean speech and noise folders. Default: the Distil-DCCRN comparison,
# Uformer teacher -> Distil-DCCRN (30 % of DCCRN), baseline and AT-KL.
#   ./run.sh --db_dir /data/DNS-Challenge --ngpu 1     a clone of microsoft/DNS-Challenge, interspeech2020/master
#   ./run.sh --kd_configs all                          also DCCRN-CL -> Distil-DCCRN with the output, FitNets,
#                                                      AT and multi-task adaptive KD baselines, and MANNER ->
#                                                      MANNER-S-8.1GF with MV-AT
#   ./run.sh --conf_tag tiny                           a few steps per system (checks the recipe, no results)
# Options: see ../TEMPLATE/enh.sh. README.md has the stages and the published numbers.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

./enh.sh \
  --db_dir DNS-Challenge \
  --teacher_config conf/teacher_uformer.yaml \
  --student_config conf/student.yaml \
  --kd_configs "conf/kd/atkl.yaml" \
  --train_set train --valid_set valid --test_sets auto \
  "$@"
