#!/usr/bin/env bash
# egs/mini_spk: speaker verification on a synthesized corpus, the SV counterpart of egs/mini.
# 100 eSpeak NG training talkers (12 utterances each), held-out utterances of them for validation,
# 20 unseen talkers for the test trials; an ECAPA-TDNN teacher (C = 128), a student of ~30 % of
# its size trained without KD, and the same student distilled with logit KD (Hinton), embedding
# KD (cosine) and IML-KD (integrated-gradient representations, multi-level alignment); EER and
# minDCF of every system in exp/RESULTS.md. All stages run on a CPU.
#   ./run.sh --seeds 0,1,2                       students with three seeds (mean and spread)
#   ./run.sh --score_norm "cosine asnorm"        also AS-norm scores (cohort: the training talkers)
# Options: see ../TEMPLATE/sv.sh.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

./sv.sh \
  --teacher_config conf/teacher.yaml \
  --student_config conf/student.yaml \
  --kd_configs "conf/kd/logit_kd.yaml conf/kd/embedding_kd.yaml conf/kd/imlkd.yaml" \
  --train_set train --valid_set valid --test_sets test \
  --report_opts "--profile_seconds 2" \
  "$@"
