#!/usr/bin/env bash
# egs/mini: the embedded default. A corpus synthesized on the fly (eSpeak NG speech,
# synthetic noises), a converged DCCRN teacher (pretrained/teacher.zip, trained by this
# recipe: pretrained/README.md; every teacher with a pretrained/<system>.zip is taken from
# there), a DCCRN student of 10 % of its size trained without KD, the same student with mtakd's teacher-free loss (its ablation), and the student distilled
# with multi-task adaptive KD (mtakd); scored and compared in exp/RESULTS.md with paired
# confidence intervals. Runs on a laptop CPU in about 20 minutes.
#   ./run.sh --teacher_model ""          train the teacher here instead (stage 3, ~70 min on 1 core)
#   ./run.sh --kd_configs all            every KD method with the teacher/student pair it was
#                                        published with (Uformer, MANNER, DPDCRN teachers too)
#   ./run.sh --kd_configs all --seeds 0,1,2 --train_nj 2 --train_opts "--train.num_threads 1"
#   ./run.sh --metrics pesq_wb,stoi,sisdr,dnsmos_ovrl    any metric set (sekd-score --help)
# Options: see ../TEMPLATE/enh.sh. The demo leaves DNSMOS out of its default metrics: it costs
# ~1.4 s per utterance on a CPU (4 minutes of the demo); enh.sh's default includes it.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

./enh.sh \
  --teacher_config conf/teacher.yaml \
  --teacher_model pretrained \
  --student_config conf/student.yaml \
  --kd_configs "conf/kd/mtakd.yaml" \
  --train_set train --valid_set valid --test_sets test \
  --metrics pesq_wb,pesq_nb,stoi,estoi,sisdr,sdr,csig,cbak,covl \
  "$@"
