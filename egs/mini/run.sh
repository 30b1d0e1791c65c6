#!/usr/bin/env bash
# egs/mini: the embedded default. A corpus synthesized on the fly (eSpeak NG speech,
# synthetic noises), a DCCRN teacher, a DCCRN student of ~30% of its size trained
# without KD, and the same student distilled with multi-task adaptive KD (mtakd); scored
# and compared in exp/RESULTS.md. Runs on a laptop CPU in about 20 minutes.
#   ./run.sh --kd_configs all            every KD method with the teacher/student pair it was
#                                        published with (Uformer, MANNER, DPDCRN teachers too)
#   ./run.sh --kd_configs all --seeds 0,1,2
#   ./run.sh --metrics pesq_wb,stoi,sisdr,dnsmos_ovrl    any metric set (sekd-score --help)
# Options: see ../TEMPLATE/enh.sh. The demo leaves DNSMOS out of its default metrics: it costs
# ~1.4 s per utterance on a CPU (4 minutes of the demo); enh.sh's default includes it.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

./enh.sh \
  --teacher_config conf/teacher.yaml \
  --student_config conf/student.yaml \
  --kd_configs "conf/kd/mtakd.yaml" \
  --train_set train --valid_set valid --test_sets test \
  --metrics pesq_wb,pesq_nb,stoi,estoi,sisdr,sdr,csig,cbak,covl \
  "$@"
