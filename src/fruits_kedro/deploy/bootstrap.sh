#!/bin/bash
# EMR bootstrap action: install fruits-kedro's pinned runtime and the project wheel on a node.
# Usage: bootstrap.sh s3://<results bucket>/<prefix>/artifacts/
# A wheelhouse uploaded under artifacts/wheelhouse/<machine>/ is used when present (clusters in a
# private subnet reach S3 through the gateway endpoint, not PyPI); otherwise pip uses PyPI.
set -euo pipefail
artifacts="${1%/}"
python="${FRUITS_PYTHON:-python3.11}"
machine="$(uname -m)"   # x86_64 or aarch64 (Graviton)
work="$(mktemp -d)"
echo "fruits-kedro bootstrap on ${machine} from ${artifacts}"

command -v "${python}" >/dev/null || sudo dnf install -y python3.11 python3.11-pip
aws s3 cp --quiet "${artifacts}/requirements-runtime.txt" "${work}/"
aws s3 cp --quiet --recursive --exclude "*" --include "fruits_kedro-*.whl" "${artifacts}/" "${work}/"

sources=()
if aws s3 ls "${artifacts}/wheelhouse/${machine}/" >/dev/null 2>&1; then
  aws s3 cp --quiet --recursive "${artifacts}/wheelhouse/${machine}/" "${work}/wheelhouse/"
  sources=(--no-index --find-links "${work}/wheelhouse")
fi
sudo "${python}" -m pip install --quiet --only-binary=:all: "${sources[@]}" \
  --requirement "${work}/requirements-runtime.txt"
sudo "${python}" -m pip install --quiet --no-deps "${work}"/fruits_kedro-*.whl
"${python}" -c "import fruits_kedro, pyspark, ai_edge_litert; print('fruits-kedro ready')"
