#!/usr/bin/env bash
# fix_data_dir.sh: make a Kaldi-style enhancement data directory consistent.
#
#   utils/fix_data_dir.sh <data-dir>
#
# For each of wav.scp, spk1.scp, noise1.scp, utt2spk, utt2dur and text that exists:
# drops DOS line endings, leading whitespace, blank or malformed lines (and utt2dur
# lines whose duration is not a positive number), sorts by utterance id in C-locale
# order and keeps the first line of each duplicated id. Then keeps only the
# utterances present in all of these files and regenerates spk2utt from utt2spk
# (utt2spk is first rebuilt from spk2utt if only spk2utt exists).
# The original files are copied to <data-dir>/.backup/ and the ids of the removed
# utterances are listed in <data-dir>/.backup/removed_utts. Finally the directory is
# checked with utils/validate_data_dir.sh; the exit status is its result.
set -euo pipefail

prog=fix_data_dir.sh
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ $# -ne 1 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
  echo "Usage: utils/fix_data_dir.sh <data-dir>" >&2
  exit 1
fi
data=${1%/}

die() {
  echo "${prog}: $*" >&2
  exit 1
}

[ -d "${data}" ] || die "${data}: no such directory"
[ -f "${data}/wav.scp" ] || die "${data}/wav.scp: missing"

export LC_ALL=C
tmp=$(mktemp -d)
trap 'rm -rf "${tmp}"' EXIT
backup=${data}/.backup
mkdir -p "${backup}"

if [ ! -f "${data}/utt2spk" ]; then
  [ -f "${data}/spk2utt" ] || die "${data}/utt2spk: missing (and no spk2utt to rebuild it from)"
  echo "${prog}: ${data}/utt2spk missing, rebuilding it from spk2utt" >&2
  "${utils}/spk2utt_to_utt2spk.pl" "${data}/spk2utt" > "${data}/utt2spk"
fi

# Per-file rules: minimum and maximum (0: any) number of fields, and a kind.
files=()
for f in wav.scp spk1.scp noise1.scp utt2spk utt2dur text; do
  [ -f "${data}/${f}" ] || continue
  files+=("${f}")
  case "${f}" in
    utt2spk) min_nf=2; max_nf=2; kind=plain ;;
    utt2dur) min_nf=2; max_nf=2; kind=dur ;;
    text) min_nf=1; max_nf=0; kind=plain ;;
    *) min_nf=2; max_nf=0; kind=plain ;;
  esac
  cp "${data}/${f}" "${backup}/${f}"
  awk -v min_nf="${min_nf}" -v max_nf="${max_nf}" -v kind="${kind}" '
    {
      sub(/\r$/, ""); sub(/^[ \t]+/, "")
      if (NF < min_nf || (max_nf > 0 && NF > max_nf)) next
      if (kind == "dur") {
        d = $2 ""
        if (d !~ /^([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$/ || d + 0 <= 0) next
      }
      print
    }' "${data}/${f}" | sort -s -u -k1,1 > "${tmp}/${f}"
  awk '{print $1}' "${tmp}/${f}" > "${tmp}/${f}.keys"
done
if [ -f "${data}/spk2utt" ]; then
  cp "${data}/spk2utt" "${backup}/spk2utt"
fi

# Utterances present in every file.
for f in "${files[@]}"; do cat "${tmp}/${f}.keys"; done | sort | uniq -c |
  awk -v n="${#files[@]}" '$1 == n {print $2}' > "${tmp}/keep"
for f in "${files[@]}"; do cat "${tmp}/${f}.keys"; done | sort -u > "${tmp}/all"
comm -23 "${tmp}/all" "${tmp}/keep" > "${backup}/removed_utts"

for f in "${files[@]}"; do
  awk 'NR == FNR {keep[$1 ""] = 1; next} (($1 "") in keep)' "${tmp}/keep" "${tmp}/${f}" > "${data}/${f}"
done
"${utils}/utt2spk_to_spk2utt.pl" "${data}/utt2spk" | sort -k1,1 > "${data}/spk2utt"

num_kept=$(wc -l < "${tmp}/keep")
num_removed=$(wc -l < "${backup}/removed_utts")
echo "${prog}: kept ${num_kept} utterances, removed ${num_removed} (listed in ${backup}/removed_utts; original files in ${backup})" >&2
[ "${num_kept}" -gt 0 ] || die "${data}: no utterance is present in all of: ${files[*]}"

if [ -f "${data}/spk1.scp" ]; then
  "${utils}/validate_data_dir.sh" "${data}"
else
  "${utils}/validate_data_dir.sh" --no-spk1 "${data}"
fi
