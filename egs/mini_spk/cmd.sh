# shellcheck shell=bash
# Job commands of the recipe (Kaldi convention). run.pl runs jobs on this machine;
# slurm.pl submits them to a Slurm cluster with the same interface (--gpu, --mem,
# --num-threads, --max-jobs-run), mapped to sbatch options by conf/slurm.conf.
#   SEKD_CMD=slurm ./run.sh --ngpu 1
case "${SEKD_CMD:-local}" in
  local) export train_cmd="utils/run.pl" decode_cmd="utils/run.pl" ;;
  slurm) export train_cmd="utils/slurm.pl --mem 8G" decode_cmd="utils/slurm.pl --num-threads 2" ;;
  *) echo "cmd.sh: SEKD_CMD must be local or slurm, not '${SEKD_CMD}'" >&2; return 1 ;;
esac
