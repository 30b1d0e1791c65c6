# shellcheck shell=bash
# parse_options.sh: Kaldi-style command-line option parsing for shell scripts.
#
# Source it after defining the defaults of every option the script accepts:
#
#   stage=0
#   use_gpu=false
#   help_message="Usage: $0 [options] <data-dir>"
#   . utils/parse_options.sh || exit 1
#   [ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
#
# Semantics (those of Kaldi's utils/parse_options.sh):
#   --foo-bar VALUE, --foo_bar VALUE and --foo-bar=VALUE set the shell variable
#       foo_bar, which must already be defined (set, possibly to "") by the caller;
#       anything else is "parse_options.sh: invalid option --foo-bar" and exit 1.
#   A variable whose current value is true or false only accepts true or false.
#   --config FILE (or --config=FILE) sources FILE (lines of var=value) before any
#       other option is applied, so explicit options override the config file.
#   --help / -h prints $help_message (to stdout) and exits 0.
#   Parsing stops at the first argument that is not an option ("--" is consumed);
#   the remaining positional arguments are left in "$@".
#
# Being sourced, this file runs in the caller's shell: "exit" ends the caller and
# "shift" consumes the caller's arguments. Its own helper variables (_po_*) are unset
# before it returns.

# 1) Config files first, so that options given on the command line override them.
_po_i=1
while [ "${_po_i}" -le $# ]; do
  _po_arg=${!_po_i}
  case "${_po_arg}" in
    --) break ;;
    --config=*) _po_config=${_po_arg#--config=} ;;
    --config)
      _po_next=$((_po_i + 1))
      if [ "${_po_next}" -gt $# ]; then
        echo "parse_options.sh: option --config requires a value" >&2
        exit 1
      fi
      _po_config=${!_po_next}
      _po_i=${_po_next}
      ;;
    --*=*) _po_i=$((_po_i + 1)); continue ;;
    --*) _po_i=$((_po_i + 2)); continue ;;  # an option and its value
    *) break ;;                             # first positional argument
  esac
  if [ ! -r "${_po_config}" ]; then
    echo "parse_options.sh: cannot read config file '${_po_config}'" >&2
    exit 1
  fi
  # shellcheck disable=SC1090  # the config file is chosen at run time
  . "${_po_config}" || exit 1
  _po_i=$((_po_i + 1))
done

# 2) The options themselves.
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      if [ -n "${help_message:-}" ]; then
        printf '%s\n' "${help_message}"
      else
        echo "parse_options.sh: no help message (the script sets no help_message)"
      fi
      exit 0
      ;;
    --)
      shift
      break
      ;;
    --*=*)
      _po_opt=${1%%=*}
      _po_value=${1#*=}
      shift
      ;;
    --*)
      _po_opt=$1
      if [ $# -lt 2 ]; then
        echo "parse_options.sh: option $1 requires a value" >&2
        exit 1
      fi
      _po_value=$2
      shift 2
      ;;
    *)
      break
      ;;
  esac

  [ "${_po_opt}" = --config ] && continue  # already sourced above

  _po_name=${_po_opt#--}
  _po_name=${_po_name//-/_}
  if ! [[ "${_po_name}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ -z "${!_po_name+set}" ]; then
    echo "parse_options.sh: invalid option ${_po_opt}" >&2
    exit 1
  fi
  _po_old=${!_po_name}
  if { [ "${_po_old}" = true ] || [ "${_po_old}" = false ]; } &&
     [ "${_po_value}" != true ] && [ "${_po_value}" != false ]; then
    echo "parse_options.sh: option ${_po_opt} expects true or false, got '${_po_value}'" >&2
    exit 1
  fi
  if [ "${_po_name}" = cmd ] && [ -z "${_po_value}" ]; then
    echo "parse_options.sh: empty value for option --cmd" >&2
    exit 1
  fi
  printf -v "${_po_name}" '%s' "${_po_value}"
done

unset _po_i _po_arg _po_next _po_config _po_opt _po_value _po_name _po_old
true
