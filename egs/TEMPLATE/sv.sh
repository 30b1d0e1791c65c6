#!/usr/bin/env bash
# Shared stage driver of the speaker-verification KD recipes (egs/<corpus>/run.sh calls it).
# The same stages as enh.sh, with embeddings and trials in place of enhanced audio and metrics.
#
# Stages (each skips work already done: a .done marker per step):
#   0 download     local/download.sh --db_dir <db_dir>, for recipes that have one
#   1 data         local/data.sh makes data dirs: wav.scp, utt2spk, spk2utt (+ trials for valid/test sets)
#   2 validate     utils/validate_data_dir.sh --no-spk1, sekd.bin.check_data --no_ref, trials present
#   3 teacher      train the teacher(s): --teacher_config and those the KD configs name
#                  (or take pretrained ones: --teacher_model)
#   4 student      train the baseline student(s) (no KD), once per seed
#   5 distill      one distilled student per KD config in --kd_configs, once per seed
#   6 embed        every system's embeddings of every test set (and of --cohort_set for AS-norm)
#   7 score        cosine scoring of each test set's trials (EER, minDCF); AS-norm too with --score_norm
#   8 report       exp/RESULTS.md (EER / minDCF; <set>_asnorm tables for AS-norm scores)
set -euo pipefail

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') ($(basename "$0")) $*"; }

# Options (override with --name value).
stage=0
stop_stage=100
ngpu=0                         # GPUs per training job (>1: torchrun, one process each)
datadir=data                   # where the data dirs go
exp=exp                        # where the systems go
data_opts=""                   # options of local/data.sh
db_dir=""                      # where the corpus is: --db_dir of local/{download,data}.sh
conf_tag=""                    # e.g. tiny: layer conf/<tag>/common.yaml and conf/<tag>/<config name>.yaml on every training run
train_set=train
valid_set=valid                # needs a trials file (validation EER picks the best checkpoint)
test_sets="test"               # each needs a trials file
sample_rate=16000
teacher_config=conf/teacher.yaml
student_config=conf/student.yaml
kd_configs="conf/kd/logit_kd.yaml conf/kd/embedding_kd.yaml conf/kd/imlkd.yaml"   # or "all"
seeds=0                        # seeds of the students, e.g. "0,1,2"
train_opts=""                  # config overrides for every training run, e.g. "--train.max_epochs 2"
teacher_opts=""                # ... for the teacher only
teacher_model=""               # pretrained teacher(s) instead of training: a checkpoint or sekd-pack zip for the
                               # default teacher, "name=path ..." per teacher system (stage 3 trains none of them),
                               # or a directory: each teacher with a <dir>/<system>.zip takes it, the others are trained
student_opts=""                # ... for the students (baseline and KD)
embed_opts=""                  # options of sekd.bin.extract_embeddings, e.g. "--max_seconds 20"
score_norm="cosine"            # "cosine", or "cosine asnorm" (AS-norm against --cohort_set, averaged per speaker)
cohort_set=""                  # AS-norm cohort (default: the training set)
top_n=300                      # AS-norm: cohort scores kept per side
train_nj=1                     # trainings at once in stages 4-5 (each with its own train.num_threads)
force=false                    # true: retrain a finished system whose options or inputs changed (else that is an error)
kd_weight_scales=""            # e.g. "0.5,1,2": train each KD method once per scale of its weights (first seed),
                               # choose the scale on the validation set (exp/sweep/<method>.json), train every seed with it
report_opts=""                 # options of sekd.bin.report, e.g. "--profile_seconds 0.5"
# shellcheck disable=SC2034  # read by utils/parse_options.sh
# --help: every option of the block above with its default and comment (as ESPnet's drivers list them).
help_message="Usage: $0 [options]   (stages: 0 download, 1 data, 2 validate, 3 teacher, 4 student, 5 distill, 6 embed, 7 score, 8 report)
Options (--name value; default in brackets):
$(sed -n '/^# Options (override/,/^# shellcheck disable=SC2034/p' "$(readlink -f "$0")" \
  | sed -nE 's/^([a-z_]+)="([^"]*)" *(# *(.*))?$/  --\1 [\2]  \4/p; s/^([a-z_]+)=([^" ]*) *(# *(.*))?$/  --\1 [\2]  \4/p
             s/^ {20,}# */        /p')"

. utils/parse_options.sh

# shellcheck source=lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"  # functions only
init_driver

if run_stage 0; then download_stage; fi
if run_stage 1; then data_stage; fi
resolve_test_sets

cohort_set=${cohort_set:-${train_set}}
for norm in ${score_norm}; do
  case "${norm}" in
    cosine|asnorm) ;;
    *) echo "$0: --score_norm takes cosine and/or asnorm, not '${norm}'" >&2; exit 1 ;;
  esac
done
asnorm=false
case " ${score_norm} " in *" asnorm "*) asnorm=true ;; esac

if run_stage 2; then
  log "stage 2: validating data dirs"
  for set in ${train_set} ${valid_set} ${test_sets}; do
    utils/validate_data_dir.sh --no-spk1 "${datadir}/${set}"
  done
  for set in ${valid_set} ${test_sets}; do
    if [ ! -s "${datadir}/${set}/trials" ]; then
      echo "$0: ${datadir}/${set}/trials: missing or empty (<enroll> <test> target|nontarget per line)" >&2
      exit 1
    fi
  done
  # shellcheck disable=SC2046  # one argument per set
  python -m sekd.bin.check_data --no_ref --sample_rate "${sample_rate}" \
    $(for set in ${train_set} ${valid_set} ${test_sets}; do echo "${datadir}/${set}"; done)
fi

# The systems of stages 3-8 (exp/plan.json), made once the data is there.
if [ "${stop_stage}" -ge 3 ]; then make_plan; fi
if run_stage 3; then teacher_stage; fi
if run_stage 4; then student_stage; fi
if run_stage 5; then distill_stage; fi

embed_sets="${test_sets}"
[ "${asnorm}" = true ] && embed_sets="${embed_sets} ${cohort_set}"
if run_stage 6; then
  for system in $(systems); do
    for set in ${embed_sets}; do
      out="${exp}/${system}/embeddings/${set}"
      # shellcheck disable=SC2086  # embed_opts holds several options
      step "${out}" "${exp}/${system}/log/embed_${set}.log" "stage 6: ${system} on ${set}: already embedded" \
        "stage 6: embedding ${set} with ${system}" python -m sekd.bin.extract_embeddings \
        --checkpoint "${exp}/${system}/checkpoints/best.pt" --data_dir "${datadir}/${set}" --out_dir "${out}" \
        --num_threads 1 ${embed_opts}
    done
  done
fi

report_sets=""
for set in ${test_sets}; do
  for norm in ${score_norm}; do
    if [ "${norm}" = asnorm ]; then report_sets="${report_sets} ${set}_asnorm"; else report_sets="${report_sets} ${set}"; fi
  done
done

if run_stage 7; then
  for set in ${test_sets}; do
    for system in $(systems); do
      emb="${exp}/${system}/embeddings/${set}/embeddings.scp"
      for norm in ${score_norm}; do
        name=${set}
        norm_opts=()
        if [ "${norm}" = asnorm ]; then
          name=${set}_asnorm
          norm_opts=(--cohort "${exp}/${system}/embeddings/${cohort_set}/embeddings.scp"
                     --cohort_utt2spk "${datadir}/${cohort_set}/utt2spk" --top_n "${top_n}")
        fi
        out="${exp}/${system}/scoring/${name}"
        step --show "${out}" "${exp}/${system}/log/score_${name}.log" "stage 7: ${system} on ${name}: already scored" \
          "stage 7: scoring ${system} on ${name}" python -m sekd.bin.score_sv \
          --trials "${datadir}/${set}/trials" --embeddings "${emb}" "${norm_opts[@]}" --out_dir "${out}"
      done
    done
  done
fi

if run_stage 8; then
  log "stage 8: report"
  # shellcheck disable=SC2086  # report_opts holds several options
  python -m sekd.bin.report --exp_dir "${exp}" --sets "$(echo ${report_sets} | tr ' ' ',')" --primary_metric eer \
    ${report_opts}
  log "wrote ${exp}/RESULTS.md"
fi
