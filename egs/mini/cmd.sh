# shellcheck shell=bash
# Job commands of the recipe (Kaldi convention). run.pl runs jobs on this machine;
# on a cluster, point these at a scheduler wrapper such as slurm.pl.
export train_cmd="utils/run.pl"
export decode_cmd="utils/run.pl"
