# shellcheck shell=bash
# Environment of every recipe (egs/<corpus>/path.sh links here): the sekd virtualenv made by tools/install.sh, when present.
MAIN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export MAIN_ROOT
if [ -f "${MAIN_ROOT}/tools/venv/bin/activate" ] && [ -z "${VIRTUAL_ENV:-}" ]; then
  # shellcheck disable=SC1091
  . "${MAIN_ROOT}/tools/venv/bin/activate"
fi
export PYTHONUNBUFFERED=1
export LC_ALL=C
