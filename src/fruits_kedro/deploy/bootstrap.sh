#!/bin/bash
# Install fruits-kedro's pinned runtime and the project wheel on a node (the EMR bootstrap action).
# Usage: bootstrap.sh ARTIFACTS   (s3://<results bucket>/<prefix>/artifacts/, or a local dist/ folder)
# Environment:
#   FRUITS_ROLE=executor   install requirements-executor.txt (no TensorFlow: executors run the
#                          TFLite model the driver converted); default: requirements-runtime.txt
#   FRUITS_VENV=DIR        install into a new virtual environment at DIR instead of the system
#                          interpreter (a local Spark cluster's executors)
#   FRUITS_PYTHON          the interpreter to install into, or to make the environment with
# A wheelhouse under ARTIFACTS/wheelhouse/<machine>/ is used when present (clusters in a private
# subnet reach S3 through the gateway endpoint, not PyPI); otherwise pip uses PyPI.
set -euo pipefail
artifacts="${1%/}"
python="${FRUITS_PYTHON:-python3.11}"
requirements="requirements-${FRUITS_ROLE:-runtime}.txt"
machine="$(uname -m)"   # x86_64 or aarch64 (Graviton)
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
echo "fruits-kedro bootstrap (${requirements}) on ${machine} from ${artifacts}"

fetch() {  # fetch PATTERN: copy the matching artifacts into ${work}
  if [[ "${artifacts}" == s3://* ]]; then
    aws s3 cp --quiet --recursive --exclude "*" --include "$1" "${artifacts}/" "${work}/"
  else
    cp "${artifacts}"/$1 "${work}/"
  fi
}

if [ -n "${FRUITS_VENV:-}" ]; then
  "${python}" -m venv "${FRUITS_VENV}"
  python="${FRUITS_VENV}/bin/python"
  sudo=()
else
  command -v "${python}" >/dev/null || sudo dnf install -y python3.11 python3.11-pip
  sudo=(sudo)
fi
fetch "${requirements}"
fetch "fruits_kedro-*.whl"

sources=()
if [[ "${artifacts}" == s3://* ]] && aws s3 ls "${artifacts}/wheelhouse/${machine}/" >/dev/null 2>&1; then
  aws s3 cp --quiet --recursive "${artifacts}/wheelhouse/${machine}/" "${work}/wheelhouse/"
  sources=(--no-index --find-links "${work}/wheelhouse")
elif [ -d "${artifacts}/wheelhouse/${machine}" ]; then
  sources=(--no-index --find-links "${artifacts}/wheelhouse/${machine}")
fi
"${sudo[@]}" "${python}" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
  "${sources[@]}" --requirement "${work}/${requirements}"
"${sudo[@]}" "${python}" -m pip install --quiet --disable-pip-version-check --no-deps \
  "${work}"/fruits_kedro-*.whl
# PySpark itself comes from the Spark installation (SPARK_HOME/python/lib), not from pip.
"${python}" -c "import fruits_kedro, ai_edge_litert, numpy, pandas, pyarrow, PIL; print('fruits-kedro ready')"
