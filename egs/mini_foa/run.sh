#!/usr/bin/env bash
# egs/mini_foa: the multi-channel variant of egs/mini, a stand-in for L3DAS23 task 1 that needs
# no download. The mini corpus's synthesized speech and noises are rendered in simulated rooms
# onto a tetrahedral microphone and converted to 4-channel first-order Ambisonics; the target is
# the mono direct-path speech. A 4-channel DPDCRN teacher, a DPDCRN student trained without KD
# and the same student distilled with I2SRF-TFCKD; scored on W (channel 0 of the input for the
# noisy row) and compared in exp/RESULTS.md. About 15 minutes on a 2-core CPU (README.md).
# Options: see ../TEMPLATE/enh.sh, e.g.
#   ./run.sh --stage 6                              re-enhance and re-score
#   ./run.sh --metrics pesq_wb,stoi,sisdr,dnsmos_ovrl
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

./enh.sh \
  --teacher_config conf/teacher_dpdcrn.yaml \
  --student_config conf/student_dpdcrn.yaml \
  --kd_configs conf/kd/i2srf_tfckd.yaml \
  --train_set train --valid_set valid --test_sets test \
  --metrics pesq_wb,pesq_nb,stoi,estoi,sisdr,sdr,csig,cbak,covl \
  "$@"
