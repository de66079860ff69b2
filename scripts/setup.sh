#!/usr/bin/env bash
# Installs the pinned Python side of plastic (torch for libtorch, gymnasium, tensorboard) into a
# virtual environment cached outside the clone, keyed by the pinned versions, so every clone on
# this machine shares it and a second run is a quick no-op.
# Prints the venv's path as the only line on stdout; progress goes to stderr.
set -euo pipefail

TORCH_VERSION=2.11.0
GYMNASIUM_VERSION=1.4.0
TENSORBOARD_VERSION=2.21.0
# Tools for the Python package (python/) and scripts: the build backend, the test runner and
# the linter and formatter (`make lint`). Installed into the same environment on top of it
# (their own stamp), so a change here does not download torch again.
MATURIN_VERSION=1.16.0
PYTEST_VERSION=9.2.0
RUFF_VERSION=0.17.5
# sb3-contrib's RecurrentPPO for scripts/sb3_side_by_side.py, with the stable-baselines3 it
# requires; also on top of the environment with its own stamp (pip adds only these two).
SB3_CONTRIB_VERSION=2.9.2
STABLE_BASELINES3_VERSION=2.9.2
KEY="torch${TORCH_VERSION}-gym${GYMNASIUM_VERSION}-tb${TENSORBOARD_VERSION}"
CACHE_ROOT="${PLASTIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/plastic}"
VENV="$CACHE_ROOT/venv-$KEY"
# Written last: a venv without it is an interrupted install and is rebuilt from scratch.
STAMP="$VENV/.plastic-complete"

TOOLS_STAMP="$VENV/.plastic-tools-maturin${MATURIN_VERSION}-pytest${PYTEST_VERSION}-ruff${RUFF_VERSION}"
# MiniGrid's tasks (configs/gym-minigrid-memory.toml and the image-encoder tests), on top of the
# environment with a stamp of their own, as the tools are.
MINIGRID_VERSION=3.2.0
MINIGRID_STAMP="$VENV/.plastic-minigrid${MINIGRID_VERSION}"
SB3_STAMP="$VENV/.plastic-sb3-contrib${SB3_CONTRIB_VERSION}-sb3${STABLE_BASELINES3_VERSION}"

say() { printf '[setup] %s\n' "$*" >&2; }

# maturin, pytest and ruff, once per environment (under the lock: other clones share it).
ensure_tools() {
    [[ -f "$TOOLS_STAMP" ]] && return 0
    exec 8>"$CACHE_ROOT/setup-tools.lock"
    flock 8
    if [[ ! -f "$TOOLS_STAMP" ]]; then
        say "Installing maturin==$MATURIN_VERSION, pytest==$PYTEST_VERSION and ruff==$RUFF_VERSION (Python package build, tests and lint)."
        "$VENV/bin/python" -m pip install --progress-bar off \
            "maturin==$MATURIN_VERSION" "pytest==$PYTEST_VERSION" "ruff==$RUFF_VERSION" >&2
        touch "$TOOLS_STAMP"
    fi
    exec 8>&-
}

# minigrid, once per environment (under the lock: other clones share it).
ensure_minigrid() {
    [[ -f "$MINIGRID_STAMP" ]] && return 0
    exec 7>"$CACHE_ROOT/setup-minigrid.lock"
    flock 7
    if [[ ! -f "$MINIGRID_STAMP" ]]; then
        say "Installing minigrid==$MINIGRID_VERSION (MiniGrid's tasks)."
        "$VENV/bin/python" -m pip install --progress-bar off "minigrid==$MINIGRID_VERSION" >&2
        touch "$MINIGRID_STAMP"
    fi
    exec 7>&-
}

# sb3-contrib and stable-baselines3, once per environment (under the lock, as the tools).
ensure_sb3_contrib() {
    [[ -f "$SB3_STAMP" ]] && return 0
    exec 8>"$CACHE_ROOT/setup-sb3.lock"
    flock 8
    if [[ ! -f "$SB3_STAMP" ]]; then
        say "Installing sb3-contrib==$SB3_CONTRIB_VERSION and stable-baselines3==$STABLE_BASELINES3_VERSION (scripts/sb3_side_by_side.py)."
        "$VENV/bin/python" -m pip install --progress-bar off \
            "sb3-contrib==$SB3_CONTRIB_VERSION" "stable-baselines3==$STABLE_BASELINES3_VERSION" >&2
        touch "$SB3_STAMP"
    fi
    exec 8>&-
}

if [[ -f "$STAMP" ]]; then
    ensure_tools
    ensure_minigrid
    ensure_sb3_contrib
    say "Python environment ready: $VENV"
    echo "$VENV"
    exit 0
fi

PYTHON="${PLASTIC_PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then PYTHON=$candidate; break; fi
    done
fi
if [[ -z "$PYTHON" ]]; then
    say "error: no python3 found. Install CPython 3.11 (with venv and pip), or set PLASTIC_PYTHON."
    exit 1
fi

# The Gymnasium bridge embeds this Python: it links against its shared library.
if [[ "$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_config_var("Py_ENABLE_SHARED") or 0)')" != 1 ]]; then
    say "error: $PYTHON was built without its shared library (libpython), which plastic's"
    say "Gymnasium bridge embeds. Use a CPython 3.11 that has it (Debian's python3.11 with"
    say "libpython3.11-dev, or pyenv with PYTHON_CONFIGURE_OPTS=--enable-shared) and point"
    say "PLASTIC_PYTHON at it."
    exit 1
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/setup.lock"
if ! flock -n 9; then
    say "Another setup is installing into $CACHE_ROOT; waiting for it to finish."
    flock 9
fi
if [[ -f "$STAMP" ]]; then
    ensure_tools
    ensure_minigrid
    ensure_sb3_contrib
    echo "$VENV"
    exit 0
fi

rm -rf "$VENV"
say "Creating the Python environment for plastic in $VENV (once per machine)."
say "Using $("$PYTHON" --version 2>&1) from $(command -v "$PYTHON")."
"$PYTHON" -m venv "$VENV"
say "Downloading torch==$TORCH_VERSION with its CUDA libraries (about 3.7 GB, a few minutes),"
say "gymnasium==$GYMNASIUM_VERSION and tensorboard==$TENSORBOARD_VERSION. pip's progress follows."
"$VENV/bin/python" -m pip install --progress-bar on \
    "torch==$TORCH_VERSION" \
    "gymnasium[classic-control]==$GYMNASIUM_VERSION" \
    "tensorboard==$TENSORBOARD_VERSION" \
    "imageio==2.37.0" >&2
"$VENV/bin/python" -c 'import torch, gymnasium, tensorboard' >&2
touch "$STAMP"
ensure_tools
ensure_minigrid
ensure_sb3_contrib
say "Python environment ready: $VENV"
echo "$VENV"
