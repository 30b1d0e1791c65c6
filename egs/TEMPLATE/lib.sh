# shellcheck shell=bash
# shellcheck disable=SC2154  # the options are set by the sourcing driver
# What the stage drivers enh.sh and sv.sh share, sourced after their options are parsed. It only
# defines functions; the drivers call them, every stage guard in sight:
#   init_driver (job commands, GPU launch, the stage range), run_stage N, download_stage (0),
#   data_stage (1), resolve_test_sets (--test_sets auto), make_plan (the systems: sekd.bin.plan,
#   also ${exp}/plan.json), teacher_stage (3), student_stage (4), distill_stage (5, with
#   --kd_weight_scales), and what they use: tag_opts (--conf_tag overlays), job, inputs_key (what a
#   step was computed from, kept in its .done), step (one enhance/embed/score job of a system,
#   redone when its inputs changed), train_system (skips a system trained from the same inputs,
#   refuses one trained from others unless --force, resumes a killed run), parallel_train
#   (--train_nj), import_system (--teacher_model).

init_driver() {
  train_cmd=${train_cmd:-utils/run.pl}
  decode_cmd=${decode_cmd:-utils/run.pl}
  gpu_opt=""
  if [ "${ngpu}" -gt 0 ]; then gpu_opt="--gpu ${ngpu}"; fi
  launch=python                # how training starts: one process, or torchrun with one per GPU (DDP)
  if [ "${ngpu}" -gt 1 ]; then launch="torchrun --standalone --nproc_per_node ${ngpu}"; fi
  db_opt=()
  if [ -n "${db_dir}" ]; then db_opt=(--db_dir "${db_dir}"); fi
  plan=""
  if [ "${stage}" -gt "${stop_stage}" ]; then
    log "error: --stage ${stage} is after --stop_stage ${stop_stage}: no stage would run"
    exit 1
  fi
}

run_stage() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }

# --conf_tag: the overlay configs of a system config (a smaller model, fewer steps), as --config options.
tag_opts() {  # <config>
  [ -n "${conf_tag}" ] || return 0
  local f
  for f in "conf/${conf_tag}/common.yaml" "conf/${conf_tag}/$(basename "$1")"; do
    if [ -f "${f}" ]; then printf -- '--config %s ' "${f}"; fi
  done
}

# Run a job through the job command (its options included, e.g. "${train_cmd} ${gpu_opt}": only
# training jobs ask for GPUs); on failure show the end of its log.
job() {  # <cmd> <log> <command...>
  local cmd=$1 logfile=$2
  shift 2
  # shellcheck disable=SC2086  # cmd holds several words on purpose
  if ! ${cmd} "${logfile}" "$@"; then
    log "FAILED; the end of ${logfile}:"
    tail -n 25 "${logfile}" >&2
    exit 1
  fi
}

# What a step was computed from, as one hash (written into its .done): the command line, the
# contents of every file it names (configs, checkpoints, scp lists), the .done beside such a file
# (so an enhanced list carries the key of the enhancement that made it), and the wav.scp/spk1.scp of
# every directory it names (data dirs). A rerun compares keys: nothing stale is reused.
inputs_key() {  # <output dir, not an input> <command...>
  local out=$1 a f
  shift
  {
    printf '%s\n' "$@"
    for a in "$@"; do
      if [ "${a}" = "${out}" ]; then
        continue
      elif [ -f "${a}" ]; then
        sha256sum "${a}"
        if [ -f "$(dirname "${a}")/.done" ]; then cat "$(dirname "${a}")/.done"; fi
      elif [ -d "${a}" ]; then
        for f in "${a}/wav.scp" "${a}/spk1.scp"; do if [ -f "${f}" ]; then sha256sum "${f}"; fi; done
      fi
    done
  } | sha256sum | cut -c1-32
}

# One step of a per-system stage (enhance, embed, score): skipped when <out>/.done holds the key of
# the same inputs; redone when they changed (a retrained model, another option); then <out>/.done.
# --show prints the last result line of its log.
step() {  # [--show] <out dir> <log> <message when done> <message when starting> <command...>
  local show=false
  if [ "$1" = --show ]; then show=true; shift; fi
  local out=$1 logfile=$2 done_msg=$3 start_msg=$4 key
  shift 4
  key=$(inputs_key "${out}" "$@")
  if [ -f "${out}/.done" ]; then
    if [ "$(cat "${out}/.done")" = "${key}" ]; then
      log "${done_msg}"
      return 0
    fi
    log "${out}: made from other inputs (another model or options) than now: redoing it"
    rm -f "${out}/.done"
  fi
  log "${start_msg}"
  job "${decode_cmd}" "${logfile}" "$@"
  echo "${key}" > "${out}/.done"
  if [ "${show}" = true ]; then grep -v "^#" "${logfile}" | tail -n 1; fi
}

# The systems to train (sekd.bin.plan, also written to ${exp}/plan.json for the report), one line each:
# "<kind> <system> <seed> <config> <kd config> <teacher> <baseline> <pretrained>" ("-" where empty).
# Made after the data stages, so a broken KD config does not block them.
make_plan() {
  plan=$(python -m sekd.bin.plan --teacher_config "${teacher_config}" --student_config "${student_config}" \
    --kd_configs "${kd_configs}" --seeds "${seeds}" --teacher_models "${teacher_model}" \
    --exp_dir "${exp}" --json "${exp}/plan.json")
}
plan_of() { echo "${plan}" | awk -F '\t' -v k="$1" '$1 == k'; }
systems() { echo "${plan}" | cut -f 2; }

# Train a system, or skip it when <dir>/.done holds the key of the same command and inputs (configs,
# teacher checkpoint, data lists). A finished system with another key is never silently reused nor
# silently deleted: it is an error, unless --force true (then it is retrained from scratch).
train_system() {  # <name> <role> <command...>
  local name=$1 role=$2 dir="${exp}/$1" key
  shift 2
  local inputs=("$@" --train_dir "${datadir}/${train_set}" --valid_dir "${datadir}/${valid_set}" --role "${role}")
  key=$(inputs_key "${dir}" "${inputs[@]}")  # where the outputs go is not an input
  if [ -f "${dir}/.done" ]; then
    if grep -q '^pretrained ' "${dir}/.done"; then
      log "error: ${dir} holds a pretrained model ($(cut -d' ' -f3- "${dir}/.done")), not one trained by" \
        "this recipe; pass it again with --teacher_model, or remove ${dir} to train one"
      exit 1
    fi
    if [ "$(cat "${dir}/.done")" = "${key}" ]; then
      log "${name}: already trained (${dir}/.done)"
      return 0
    fi
    if [ "${force}" != true ]; then
      log "error: ${dir} was trained with other options or inputs than now (a changed config, --train_opts," \
        "teacher or data). Use another --exp for the new settings, remove ${dir}, or pass --force true to retrain it"
      exit 1
    fi
    log "${name}: --force: retraining from scratch (the options or inputs changed)"
    rm -rf "${dir}"
  fi
  log "${name}: training (log: ${dir}/log/train.log)"
  # --resume continues a run that was killed (the trainer refuses one started with another config).
  job "${train_cmd} ${gpu_opt}" "${dir}/log/train.log" "${inputs[@]}" --out_dir "${dir}" \
    --tensorboard_dir "${exp}/tensorboard/${name}" --resume --progress off
  echo "${key}" > "${dir}/.done"
  log "${name}: $(python -m sekd.bin.report --summary "${dir}")"  # from its model_info.json
}

# --train_nj N: stages 4 and 5 run up to N trainings at once (each with its own train.num_threads;
# on a 2-core machine: --train_nj 2 --train_opts "--train.num_threads 1"). A failed one lets the
# running ones finish, starts no more, and stops the stage with an error (its .done is never written).
parallel_train() {  # <command...>: train_system ..., in the background when --train_nj > 1
  if [ "${train_nj}" -le 1 ]; then "$@"; return; fi
  while [ "$(jobs -rp | wc -l)" -ge "${train_nj}" ]; do wait -n || true; done
  if [ -e "${exp}/.train_failed" ]; then return 0; fi
  { ( "$@" ) || echo "$*" >> "${exp}/.train_failed"; } &  # ( ): a failing step's exit ends only its subshell
}
wait_trainings() {
  wait
  if [ -e "${exp}/.train_failed" ]; then
    log "error: these trainings failed (their logs say why): $(cut -d' ' -f2 "${exp}/.train_failed" | tr '\n' ' ')"
    rm -f "${exp}/.train_failed"
    exit 1
  fi
}

# A pretrained model as a system (--teacher_model): copied in by sekd.bin.import_model, which also
# measures it on the validation set; <dir>/.done names the file and its SHA-256, so another file
# under the same name is an error, never a silent reuse.
import_system() {  # <name> <role> <model file>
  local name=$1 role=$2 model=$3 dir="${exp}/$1" want
  want="pretrained $(sha256sum "${model}" | cut -d' ' -f1) ${model}"
  if [ -f "${dir}/.done" ]; then
    if [ "$(cut -d' ' -f1-2 "${dir}/.done")" = "$(echo "${want}" | cut -d' ' -f1-2)" ]; then
      log "${name}: pretrained model already in place (${dir}, from ${model})"
      return 0
    fi
    log "error: ${dir} holds another model than ${model} (${dir}/.done: $(head -c 120 "${dir}/.done"));" \
      "remove ${dir} or use another --exp"
    exit 1
  fi
  log "${name}: using the pretrained ${model} (not trained here; log: ${exp}/log/import_${name}.log)"
  job utils/run.pl "${exp}/log/import_${name}.log" python -m sekd.bin.import_model --model "${model}" \
    --out_dir "${dir}" --role "${role}" --valid_dir "${datadir}/${valid_set}" --num_threads 1
  grep '^import_model' "${exp}/log/import_${name}.log" | head -n 1
  echo "${want}" > "${dir}/.done"
}

download_stage() {  # stage 0, for recipes that have a local/download.sh
  if [ ! -x local/download.sh ]; then return 0; fi
  log "stage 0: corpus download (local/download.sh${db_dir:+ --db_dir ${db_dir}})"
  local/download.sh "${db_opt[@]}"
}

data_stage() {  # stage 1
  if [ -f "${datadir}/.done" ]; then
    log "stage 1: data already prepared (${datadir}/.done)"
    return 0
  fi
  log "stage 1: data preparation"
  # shellcheck disable=SC2086  # data_opts holds several options
  local/data.sh --out_dir "${datadir}" "${db_opt[@]}" ${data_opts}
  touch "${datadir}/.done"
}

# --test_sets auto: the test sets local/data.sh found (it lists them in <datadir>/test_sets), so a
# partial download tests on what it has; a set named explicitly that is not there is an error.
resolve_test_sets() {
  local set
  if [ "${test_sets}" = auto ]; then
    if [ ! -f "${datadir}/test_sets" ]; then
      log "error: --test_sets auto: ${datadir}/test_sets is missing (stage 1 writes it); name the sets instead"
      exit 1
    fi
    test_sets=$(cat "${datadir}/test_sets")
    log "test sets: ${test_sets} (${datadir}/test_sets)"
  elif [ "${stop_stage}" -ge 2 ]; then
    for set in ${test_sets}; do
      if [ ! -d "${datadir}/${set}" ]; then
        log "error: --test_sets names ${set}, but there is no ${datadir}/${set}" \
          "(the corpus does not have it? local/data.sh's output says what it made)"
        exit 1
      fi
    done
  fi
}

teacher_stage() {  # stage 3: the teachers (trained, or imported with --teacher_model)
  local name conf pretrained
  while IFS=$'\t' read -r -u 3 _ name _ conf _ _ _ pretrained _; do
    if [ "${pretrained}" != - ]; then
      log "stage 3: teacher ${name}: pretrained (${pretrained})"
      import_system "${name}" teacher "${pretrained}"
      continue
    fi
    log "stage 3: teacher ${name} (${conf})"
    # shellcheck disable=SC2086,SC2046  # *_opts hold several overrides
    train_system "${name}" teacher ${launch} -m sekd.bin.train --config "${conf}" $(tag_opts "${conf}") \
      ${train_opts} ${teacher_opts}
  done 3< <(plan_of teacher)
}

student_stage() {  # stage 4: the baseline students (and KD methods' no-teacher ablations), every seed
  local name seed conf kd
  rm -f "${exp}/.train_failed"  # a killed run's list of failed trainings
  while IFS=$'\t' read -r -u 3 _ name seed conf kd _; do
    local ablation=()
    if [ "${kd}" != - ]; then  # a KD method's no-teacher ablation: its teacher-free terms on the student
      ablation=(--config "${kd}")
      log "stage 4: baseline student ${name} (${conf} + ${kd}, seed ${seed}, no teacher)"
    else
      log "stage 4: baseline student ${name} (${conf}, seed ${seed}, no KD)"
    fi
    # shellcheck disable=SC2086,SC2046
    parallel_train train_system "${name}" student ${launch} -m sekd.bin.train --config "${conf}" \
      $(tag_opts "${conf}") "${ablation[@]}" ${train_opts} ${student_opts} --train.seed "${seed}"
  done 3< <(plan_of student)
  wait_trainings
}

distill_stage() {  # stage 5: one distilled student per KD config and seed
  local name seed conf kd teacher group scale why sweep_run
  rm -f "${exp}/.train_failed"
  while IFS=$'\t' read -r -u 3 _ name seed conf kd teacher _ _ group; do
    # shellcheck disable=SC2206,SC2207  # launch and *_opts hold several words, on purpose
    local distill=(${launch} -m sekd.bin.distill --config "${conf}" $(tag_opts "${conf}") --kd_config "${kd}"
      --teacher "${exp}/${teacher}/checkpoints/best.pt" ${train_opts} ${student_opts})
    scale=1
    if [ -n "${kd_weight_scales}" ]; then
      weight_sweep "${group}" "${seed}" "${distill[@]}"
      IFS=$'\t' read -r scale why < <(python -m sekd.bin.choose_weight --read "${exp}/sweep/${group}.json")
      log "stage 5: ${group}: weight scale ${scale} (${why})"
      sweep_run="${exp}/sweep/${group}_seed${seed}_x${scale}"
      if [ ! -e "${exp}/${name}" ] && [ -f "${sweep_run}/.done" ]; then  # the sweep trained this one already
        cp -a "${sweep_run}" "${exp}/${name}"
      fi
    fi
    log "stage 5: ${name}: ${kd} (teacher ${teacher}, seed ${seed}, weight scale ${scale})"
    if [ -n "${kd_weight_scales}" ]; then  # the sweep's runs are sequential: a method's seeds wait for its choice
      train_system "${name}" kd "${distill[@]}" --kd.weight_scale "${scale}" --train.seed "${seed}"
    else
      parallel_train train_system "${name}" kd "${distill[@]}" --kd.weight_scale "${scale}" --train.seed "${seed}"
    fi
  done 3< <(plan_of kd)
  wait_trainings
}

# --kd_weight_scales: a KD method trained once per scale of its weights (every term's weight
# times the scale) with the first seed that reaches here, the scale chosen on the validation set
# by sekd.bin.choose_weight (exp/sweep/<method>.json: every scale's score, the choice and why);
# every seed of the method is then trained with it. The test set is never read.
weight_sweep() {  # <group> <seed> <distill command...>
  local group=$1 seed=$2 s runs=()
  shift 2
  [ -f "${exp}/sweep/${group}.json" ] && return 0
  for s in $(echo "${kd_weight_scales}" | tr ',' ' '); do
    s=$(printf '%g' "${s}")  # as sekd.bin.choose_weight prints the chosen one
    log "stage 5: ${group}: weight scale ${s} (seed ${seed}), to choose on validation"
    train_system "sweep/${group}_seed${seed}_x${s}" kd "$@" --kd.weight_scale "${s}" --train.seed "${seed}"
    runs+=(--run "${s}=${exp}/sweep/${group}_seed${seed}_x${s}")
  done
  python -m sekd.bin.choose_weight "${runs[@]}" --out "${exp}/sweep/${group}.json" > /dev/null
}
