#!/usr/bin/env bash
# The README's test command: install what the tests need, then run them all.
#   - cnnlab itself with its test extra (numpy, scikit-learn, tqdm, matplotlib,
#     pytest and torch==2.13.0, whose CPU wheel is on these machines);
#   - Debian's dataset-fashion-mnist for the real-data tests (needs root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq dataset-fashion-mnist
fi

python3 -m pytest -q "$@"
