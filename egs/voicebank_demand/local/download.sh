#!/usr/bin/env bash
# Stage 0 of egs/voicebank_demand: fetch and unpack the four zips of the corpus from the
# University of Edinburgh DataShare (https://doi.org/10.7488/ds/2117, handle 10283/2791;
# CC BY 4.0) into --db_dir, about 5.6 GB. Resumable (rerun after an interruption) and
# MD5-verified; skipped when --db_dir already holds the four unpacked folders.
set -euo pipefail

db_dir=downloads
url=https://datashare.ed.ac.uk/bitstream/handle/10283/2791   # or a mirror with the same file names
# shellcheck disable=SC2034  # read by utils/parse_options.sh
help_message="Usage: $0 [--db_dir downloads] [--url ${url}]"

. utils/parse_options.sh

declare -A md5=(
  [clean_trainset_28spk_wav]=d2d5a45ec32f8fcbf201bde0447e20ba
  [noisy_trainset_28spk_wav]=1fca9e8bafb8cd069f6653c6d92f9e9c
  [clean_testset_wav]=34eb1c0ba7ef667e9b966866c542fc16
  [noisy_testset_wav]=fb1b86caa31e8ba5b506c0c64da9aab5
)
todo=()
for name in clean_trainset_28spk_wav noisy_trainset_28spk_wav clean_testset_wav noisy_testset_wav; do
  if [ -d "${db_dir}/${name}" ]; then  # unpacking is atomic: a folder there is complete
    echo "download.sh: ${db_dir}/${name} is there"
  else
    todo+=("${url}/${name}.zip#${md5[${name}]}")
  fi
done
if [ ${#todo[@]} -gt 0 ]; then
  python -m sekd.bin.download --out_dir "${db_dir}/zips" --unpack_dir "${db_dir}" "${todo[@]}"
fi
