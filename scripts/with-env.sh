#!/usr/bin/env bash
# Runs a command (usually cargo) inside plastic's Python environment: installs it on first use,
# then points tch's build at its libtorch (LIBTORCH_USE_PYTORCH) and puts its python first on PATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$("$here/setup.sh")"
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
exec "$@"
