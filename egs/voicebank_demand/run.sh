#!/usr/bin/env bash
# egs/voicebank_demand: VoiceBank-DEMAND (Valentini-Botinhao et al. 2016), 16 kHz.
# Default: the MV-AT comparison, MANNER teacher -> MANNER-S-8.1GF student, baseline and MV-AT.
#   ./run.sh --db_dir /data/VoiceBank-DEMAND       the four unpacked folders (stage 0 downloads them if absent)
#   ./run.sh --kd_configs all                      also the DCCRN-CL -> Distil-DCCRN-size pair with the
#                                                  output, FitNets, AT and multi-task adaptive KD baselines
#   ./run.sh --ngpu 1                              train on a GPU (--ngpu 4: torchrun DDP on four)
#   ./run.sh --conf_tag tiny                       a few steps per system (checks the recipe, no results)
# Options: see ../TEMPLATE/enh.sh. README.md has the stages and the published numbers.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

./enh.sh \
  --db_dir downloads \
  --teacher_config conf/teacher_manner.yaml \
  --student_config conf/student_manner.yaml \
  --kd_configs "conf/kd/mvat.yaml" \
  --train_set train --valid_set valid --test_sets test \
  "$@"
