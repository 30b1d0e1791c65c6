#!/usr/bin/env bash
# egs/l3das23: L3DAS23 task 1, 3D speech enhancement from first-order Ambisonics (4 channels,
# 8 with both mics), mono target, 16 kHz. Default: the I2SRF-TFCKD comparison, DPDCRN teacher
# (4 dual-path blocks) -> DPDCRN student (1 block), baseline and I2SRF-TFCKD.
#   ./run.sh --db_dir /data/L3DAS23 --ngpu 1              the unpacked L3DAS23_Task1_* folders
#   ./run.sh --asr_model /models/wav2vec2-base-960h       also the challenge metric (STOI + 1 - WER) / 2
#   ./run.sh --kd_configs all                             also TF-calibrated KD alone (tfckd)
#   ./run.sh --conf_tag tiny                              a few steps per system (checks the recipe, no results)
# Options: see ../TEMPLATE/enh.sh. README.md has the stages and the published numbers.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

./enh.sh \
  --db_dir L3DAS23 \
  --teacher_config conf/teacher_dpdcrn.yaml \
  --student_config conf/student_dpdcrn.yaml \
  --kd_configs "conf/kd/i2srf_tfckd.yaml" \
  --train_set train --valid_set valid --test_sets test \
  --metrics pesq_wb,pesq_nb,stoi,estoi,sisdr,sdr,dnsmos_sig,dnsmos_bak,dnsmos_ovrl,wer,l3das23 \
  "$@"
