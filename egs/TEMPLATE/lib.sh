# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034  # the options are set by the sourcing driver; launch is used there
# What the stage drivers enh.sh and sv.sh share, sourced after their options are parsed:
# job commands and GPU launch, --conf_tag overlays, the plan of systems (sekd.bin.plan),
# train_system (skips a system with a .done marker, resumes a killed run), and stages 0
# (download) and 1 (data), which are the same for both tasks.

train_cmd=${train_cmd:-utils/run.pl}
decode_cmd=${decode_cmd:-utils/run.pl}
gpu_opt=""
[ "${ngpu}" -gt 0 ] && gpu_opt="--gpu ${ngpu}"
launch=python                  # how training starts: one process, or torchrun with one per GPU (DDP)
[ "${ngpu}" -gt 1 ] && launch="torchrun --standalone --nproc_per_node ${ngpu}"

run_stage() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }

# --conf_tag: the overlay configs of a system config (a smaller model, fewer steps), as --config options.
tag_opts() {  # <config>
  [ -n "${conf_tag}" ] || return 0
  local f
  for f in "conf/${conf_tag}/common.yaml" "conf/${conf_tag}/$(basename "$1")"; do
    if [ -f "${f}" ]; then printf -- '--config %s ' "${f}"; fi
  done
}
db_opt=()
[ -n "${db_dir}" ] && db_opt=(--db_dir "${db_dir}")

# Run a job through the job command; on failure show the end of its log.
job() {  # <cmd> <log> <command...>
  local cmd=$1 logfile=$2
  shift 2
  # shellcheck disable=SC2086  # cmd and gpu_opt hold several words on purpose
  if ! ${cmd} ${gpu_opt} "${logfile}" "$@"; then
    log "FAILED; the end of ${logfile}:"
    tail -n 25 "${logfile}" >&2
    exit 1
  fi
}

# The systems to train (sekd.bin.plan): "<kind> <system> <seed> <config> [<kd config> <teacher>]".
plan=$(python -m sekd.bin.plan --teacher_config "${teacher_config}" --student_config "${student_config}" \
  --kd_configs "${kd_configs}" --seeds "${seeds}")
plan_of() { echo "${plan}" | awk -F '\t' -v k="$1" '$1 == k'; }
systems() { echo "${plan}" | cut -f 2; }

train_system() {  # <name> <role> <command...>
  local name=$1 role=$2 dir="${exp}/$1"
  shift 2
  if [ -f "${dir}/.done" ]; then
    log "${name}: already trained (${dir}/.done)"
    return 0
  fi
  log "${name}: training (log: ${dir}/log/train.log)"
  # --resume continues a run that was killed; a fresh dir starts from scratch.
  job "${train_cmd}" "${dir}/log/train.log" "$@" --train_dir "${datadir}/${train_set}" \
    --valid_dir "${datadir}/${valid_set}" --out_dir "${dir}" --tensorboard_dir "${exp}/tensorboard/${name}" \
    --role "${role}" --resume --progress off
  touch "${dir}/.done"
  log "${name}: $(grep ' done: valid ' "${dir}/train.log" | tail -n 1 | cut -d" " -f3-)"
}

if run_stage 0 && [ -x local/download.sh ]; then
  log "stage 0: corpus download (local/download.sh${db_dir:+ --db_dir ${db_dir}})"
  local/download.sh "${db_opt[@]}"
fi

if run_stage 1; then
  if [ -f "${datadir}/.done" ]; then
    log "stage 1: data already prepared (${datadir}/.done)"
  else
    log "stage 1: data preparation"
    # shellcheck disable=SC2086  # data_opts holds several options
    local/data.sh --out_dir "${datadir}" "${db_opt[@]}" ${data_opts}
    touch "${datadir}/.done"
  fi
fi

