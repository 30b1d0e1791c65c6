#!/usr/bin/env bash
# Shared stage driver of the speech-enhancement KD recipes (egs/<corpus>/run.sh calls it).
#
# Stages (each skips work already done: a .done marker per step):
#   0 download     local/download.sh --db_dir <db_dir>, for recipes that have one (real corpora)
#   1 data         local/data.sh makes Kaldi-style data dirs
#   2 validate     utils/validate_data_dir.sh (text files) + sekd.bin.check_data (audio headers)
#   3 teacher      train the teacher(s): --teacher_config and those the KD configs name
#                  (or take pretrained ones: --teacher_model)
#   4 student      train the baseline student(s) (no KD), once per seed
#   5 distill      one distilled student per KD config in --kd_configs, once per seed
#   6 enhance      every system on every test set
#   7 score        the noisy input and every system
#   8 report       exp/RESULTS.md
set -euo pipefail

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') ($(basename "$0")) $*"; }

# Options (override with --name value).
stage=0
stop_stage=100
nj=2                           # parallel jobs for scoring
ngpu=0                         # GPUs per training job (--gpu of the job command; >1: torchrun, one process each)
datadir=data                   # where the data dirs go
exp=exp                        # where the systems go
data_opts=""                   # options of local/data.sh
db_dir=""                      # where the corpus is (or is downloaded to): --db_dir of local/{download,data}.sh
conf_tag=""                    # e.g. tiny: layer conf/<tag>/common.yaml and conf/<tag>/<config name>.yaml on every training run
train_set=train
valid_set=valid
test_sets="test"
sample_rate=16000
teacher_config=conf/teacher.yaml
student_config=conf/student.yaml
kd_configs="conf/kd/output.yaml"   # space-separated, or "all" (conf/kd/*.yaml); one distilled student each
seeds=0                        # seeds of the students, e.g. "0,1,2" (the report shows mean and spread)
train_opts=""                  # config overrides for every training run, e.g. "--train.max_epochs 2"
teacher_opts=""                # ... for the teacher only
teacher_model=""               # pretrained teacher(s) instead of training: a checkpoint or sekd-pack zip for the
                               # default teacher, "name=path ..." per teacher system (stage 3 trains none of them),
                               # or a directory: each teacher with a <dir>/<system>.zip takes it, the others are trained
student_opts=""                # ... for the students (baseline and KD)
# The SE literature's set; DNSMOS needs sekd[dnsmos] (else reported unavailable); add
# l3das23 (and wer) with --asr_model <wav2vec2 dir> for the L3DAS23 challenge metric.
metrics=pesq_wb,pesq_nb,stoi,estoi,sisdr,sdr,csig,cbak,covl,dnsmos_sig,dnsmos_bak,dnsmos_ovrl
asr_model=""                   # wav2vec 2.0 CTC checkpoint dir for the l3das23 / wer metrics
train_nj=1                     # trainings at once in stages 4-5 (each with its own train.num_threads)
force=false                    # true: retrain a finished system whose options or inputs changed (else that is an error)
kd_weight_scales=""            # e.g. "0.5,1,2": train each KD method once per scale of its weights (first seed),
                               # choose the scale on the validation set (exp/sweep/<method>.json), train every seed with it
report_opts=""                 # options of sekd.bin.report, e.g. "--profile_seconds 0.5 --no_plots"
# shellcheck disable=SC2034  # read by utils/parse_options.sh
# --help: every option of the block above with its default and comment (as ESPnet's drivers list them).
help_message="Usage: $0 [options]   (stages: 0 download, 1 data, 2 validate, 3 teacher, 4 student, 5 distill, 6 enhance, 7 score, 8 report)
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

if run_stage 2; then
  log "stage 2: validating data dirs"
  for set in ${train_set} ${valid_set} ${test_sets}; do
    utils/validate_data_dir.sh "${datadir}/${set}"
  done
  # shellcheck disable=SC2046  # one argument per set
  python -m sekd.bin.check_data --sample_rate "${sample_rate}" \
    $(for set in ${train_set} ${valid_set} ${test_sets}; do echo "${datadir}/${set}"; done)
fi

# The systems of stages 3-8 (exp/plan.json), made once the data is there.
if [ "${stop_stage}" -ge 3 ]; then make_plan; fi
if run_stage 3; then teacher_stage; fi
if run_stage 4; then student_stage; fi
if run_stage 5; then distill_stage; fi

if run_stage 6; then
  for system in $(systems); do
    for set in ${test_sets}; do
      out="${exp}/${system}/enhanced/${set}"
      step "${out}" "${exp}/${system}/log/enhance_${set}.log" "stage 6: ${system} on ${set}: already enhanced" \
        "stage 6: enhancing ${set} with ${system}" python -m sekd.bin.enhance \
        --checkpoint "${exp}/${system}/checkpoints/best.pt" --data_dir "${datadir}/${set}" --out_dir "${out}" \
        --num_threads 1
    done
  done
fi

if run_stage 7; then
  for set in ${test_sets}; do
    for system in noisy $(systems); do
      out="${exp}/${system}/scoring/${set}"
      est="${exp}/${system}/enhanced/${set}/wav.scp"
      [ "${system}" = noisy ] && est="${datadir}/${set}/wav.scp"
      step --show "${out}" "${exp}/${system}/log/score_${set}.log" "stage 7: ${system} on ${set}: already scored" \
        "stage 7: scoring ${system} on ${set}" python -m sekd.bin.score \
        --ref_scp "${datadir}/${set}/spk1.scp" --est_scp "${est}" --out_dir "${out}" --metrics "${metrics}" --nj "${nj}" \
        ${asr_model:+--asr_model "${asr_model}"}
    done
  done
fi

if run_stage 8; then
  log "stage 8: report"
  # shellcheck disable=SC2086  # report_opts holds several options
  python -m sekd.bin.report --exp_dir "${exp}" --sets "$(echo "${test_sets}" | tr ' ' ',')" --data_dir "${datadir}" \
    ${report_opts}
  log "wrote ${exp}/RESULTS.md"
fi
