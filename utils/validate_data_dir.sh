#!/usr/bin/env bash
# validate_data_dir.sh: check a Kaldi-style speech-enhancement data directory.
#
#   utils/validate_data_dir.sh [--no-spk1] [--no-utt2dur] <data-dir>
#
# Required: wav.scp (noisy input), utt2spk, spk2utt and, unless --no-spk1, spk1.scp
# (clean reference). Optional: noise1.scp, utt2dur (ignored with --no-utt2dur), text.
# Every file present must be non-empty, end with a newline, have no DOS line endings,
# blank lines or lines starting with whitespace, and be sorted by its first field in
# C-locale byte order (what `LC_ALL=C sort -c` accepts) with no duplicate keys.
# wav.scp, utt2spk, spk1.scp, noise1.scp, utt2dur and text must hold the same
# utterance ids; spk2utt must describe exactly the utt2spk mapping; utt2dur values
# must be positive numbers. Audio is never opened, so this is fast.
#
# On the first problem found: "validate_data_dir.sh: <file>: <what is wrong>" on
# stderr, exit 1. Otherwise "validate_data_dir.sh: Successfully validated
# data-directory <dir>" and exit 0.
set -euo pipefail

prog=validate_data_dir.sh
usage="Usage: utils/validate_data_dir.sh [--no-spk1] [--no-utt2dur] <data-dir>
  --no-spk1     the directory has no clean reference (spk1.scp is not required)
  --no-utt2dur  do not check utt2dur even if it is present"

no_spk1=false
no_utt2dur=false
while [ $# -gt 0 ]; do
  case "$1" in
    --no-spk1) no_spk1=true; shift ;;
    --no-utt2dur) no_utt2dur=true; shift ;;
    --help|-h) echo "${usage}"; exit 0 ;;
    --) shift; break ;;
    -*) echo "${prog}: unknown option $1" >&2; echo "${usage}" >&2; exit 1 ;;
    *) break ;;
  esac
done
if [ $# -ne 1 ]; then
  echo "${usage}" >&2
  exit 1
fi
data=${1%/}

die() {
  echo "${prog}: $*" >&2
  exit 1
}

[ -d "${data}" ] || die "${data}: no such directory"

export LC_ALL=C
tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT

# check_table <file> <min-fields> <max-fields or 0> <kind>
# Line format, sort order and duplicates; kind "dur" also checks positive durations.
check_table() {
  local f=$1 min_nf=$2 max_nf=$3 kind=$4 msg
  [ -f "${f}" ] || die "${f}: missing"
  [ -s "${f}" ] || die "${f}: empty file"
  [ -z "$(tail -c 1 "${f}")" ] || die "${f}: last line has no trailing newline"
  if ! msg=$(awk -v min_nf="${min_nf}" -v max_nf="${max_nf}" -v kind="${kind}" '
      function bad(what) { printf "%s (line %d)", what, NR; failed = 1; exit 1 }
      {
        if (index($0, "\r") > 0) bad("DOS line ending (carriage return)")
        if (NF == 0) bad("blank line")
        if ($0 ~ /^[ \t]/) bad("line starts with whitespace")
        if (NF < min_nf) bad("expected at least " min_nf " fields, found " NF)
        if (max_nf > 0 && NF > max_nf) bad("expected at most " max_nf " fields, found " NF)
        key = $1 ""
        if (NR > 1 && key == prev) bad("duplicate key " key)
        if (NR > 1 && key < prev)
          bad("not sorted (C-locale order; utils/fix_data_dir.sh sorts it): " key " comes after " prev)
        prev = key
        if (kind == "dur") {
          d = $2 ""
          if (d !~ /^([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$/ || d + 0 <= 0)
            bad("duration of " key " must be a positive number, found " d)
        }
      }' "${f}"); then
    die "${f}: ${msg}"
  fi
  awk '{print $1}' "${f}" > "${tmp}/$(basename "${f}").keys"
}

# same_keys <file> <reference-file>: both already checked (sorted, unique).
same_keys() {
  local f=$1 ref=$2 a b only_f only_ref n_f n_ref what
  a="${tmp}/$(basename "${f}").keys"
  b="${tmp}/$(basename "${ref}").keys"
  cmp -s "${a}" "${b}" && return 0
  only_f=$(comm -23 "${a}" "${b}")
  only_ref=$(comm -13 "${a}" "${b}")
  n_f=$(printf '%s' "${only_f}" | grep -c . || true)
  n_ref=$(printf '%s' "${only_ref}" | grep -c . || true)
  what="utterance ids differ from $(basename "${ref}"):"
  [ "${n_f}" -eq 0 ] || what="${what} ${n_f} only in $(basename "${f}") (e.g. $(head -n 1 <<< "${only_f}"))"
  [ "${n_ref}" -eq 0 ] || what="${what} ${n_ref} missing from $(basename "${f}") (e.g. $(head -n 1 <<< "${only_ref}"))"
  die "${f}: ${what}; run utils/fix_data_dir.sh"
}

check_table "${data}/wav.scp" 2 0 scp
check_table "${data}/utt2spk" 2 2 utt2spk
same_keys "${data}/utt2spk" "${data}/wav.scp"

if [ "${no_spk1}" = false ]; then
  [ -f "${data}/spk1.scp" ] || die "${data}/spk1.scp: missing (clean reference; use --no-spk1 if the data has none)"
  check_table "${data}/spk1.scp" 2 0 scp
  same_keys "${data}/spk1.scp" "${data}/wav.scp"
fi

if [ -f "${data}/noise1.scp" ]; then
  check_table "${data}/noise1.scp" 2 0 scp
  same_keys "${data}/noise1.scp" "${data}/wav.scp"
fi

if [ "${no_utt2dur}" = false ] && [ -f "${data}/utt2dur" ]; then
  check_table "${data}/utt2dur" 2 2 dur
  same_keys "${data}/utt2dur" "${data}/wav.scp"
fi

if [ -f "${data}/text" ]; then
  check_table "${data}/text" 1 0 text
  same_keys "${data}/text" "${data}/wav.scp"
fi

check_table "${data}/spk2utt" 2 0 spk2utt
awk '{for (i = 2; i <= NF; i++) print $i, $1}' "${data}/spk2utt" | sort > "${tmp}/spk2utt.expanded"
awk '{print $1, $2}' "${data}/utt2spk" | sort > "${tmp}/utt2spk.normalized"
if ! cmp -s "${tmp}/utt2spk.normalized" "${tmp}/spk2utt.expanded"; then
  first=$(diff "${tmp}/utt2spk.normalized" "${tmp}/spk2utt.expanded" | grep -m 1 '^[<>]' || true)
  case "${first}" in
    "<"*) detail="utt2spk has '${first#< }' but spk2utt does not" ;;
    *) detail="spk2utt has '${first#> }' but utt2spk does not" ;;
  esac
  die "${data}/spk2utt: does not match utt2spk (${detail}); regenerate it with utils/utt2spk_to_spk2utt.pl"
fi

echo "${prog}: Successfully validated data-directory ${data}"
