#!/usr/bin/env bash
# egs/voxceleb1: speaker verification on VoxCeleb1 (Nagrani et al. 2017), the IML-KD setting:
# an ECAPA-TDNN C = 1024 teacher and a C = 512 student trained on the 1,211 dev speakers, the
# student without KD, with logit KD, with embedding KD and with IML-KD; EER / minDCF on
# VoxCeleb1-O (cleaned), cosine and AS-norm scores, in exp/RESULTS.md.
#   ./run.sh --db_dir /data/VoxCeleb1             the unpacked corpus (wav/, iden_split.txt, veri_test2.txt)
#   ./run.sh --ngpu 1                             train on a GPU (--ngpu 4: torchrun DDP on four)
#   ./run.sh --conf_tag tiny                      a few steps per system (checks the recipe, no results)
# Options: see ../TEMPLATE/sv.sh. README.md has the layout and the stages.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

./sv.sh \
  --db_dir VoxCeleb1 \
  --teacher_config conf/teacher.yaml \
  --student_config conf/student.yaml \
  --kd_configs "conf/kd/logit_kd.yaml conf/kd/embedding_kd.yaml conf/kd/imlkd.yaml" \
  --train_set train --valid_set valid --test_sets test \
  --score_norm "cosine asnorm" --top_n 300 \
  "$@"
