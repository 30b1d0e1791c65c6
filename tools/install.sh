#!/usr/bin/env bash
# Create tools/venv (if absent) and install sekd with its dependencies into it.
#
# Environment:
#   PYTHON            interpreter used to create the venv (default: python3)
#   SEKD_TORCH_SPEC   torch requirement (default: torch==2.13.0, a CPU wheel where one is cached)
#   SEKD_TORCH_INDEX  optional extra index for torch, e.g. https://download.pytorch.org/whl/cpu
#   SEKD_EXTRAS       pip extras of sekd to install (default: test,dnsmos,asr,export)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "${here}")
venv="${here}/venv"
python=${PYTHON:-python3}
torch_spec=${SEKD_TORCH_SPEC:-torch==2.13.0}
extras=${SEKD_EXTRAS:-test,dnsmos,asr,export}

if [ ! -x "${venv}/bin/python" ]; then
  echo "install.sh: creating ${venv}"
  "${python}" -m venv "${venv}"
fi
pip=("${venv}/bin/python" -m pip --disable-pip-version-check)

stamp="${venv}/.sekd-installed"
# Reinstall only when setup.py or this script changed since the last install.
if [ -f "${stamp}" ] && [ "${stamp}" -nt "${root}/setup.py" ] && [ "${stamp}" -nt "$0" ]; then
  exit 0
fi

if ! "${venv}/bin/python" -c "import torch" 2>/dev/null; then
  if [ -n "${SEKD_TORCH_INDEX:-}" ]; then
    "${pip[@]}" install "${torch_spec}" --extra-index-url "${SEKD_TORCH_INDEX}"
  else
    "${pip[@]}" install "${torch_spec}"
  fi
fi
"${pip[@]}" install -e "${root}[${extras}]"
touch "${stamp}"
echo "install.sh: sekd installed in ${venv}"
