#!/usr/bin/env bash
# Builds the Python package `plastic` (python/: the pyo3 extension module and its Python code)
# with maturin and installs it into plastic's Python environment. Run it through
# scripts/with-env.sh (`make build` and `make test` do). The wheel is left in target/wheels/
# for other virtual environments with the same torch (see docs/python.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${VIRTUAL_ENV:?run this through scripts/with-env.sh}"
wheels="$root/target/wheels"
mkdir -p "$wheels"
rm -f "$wheels"/plastic-*.whl
# The extension shares target/ with the workspace, so tch and torch-sys are built once.
maturin build --release --locked --quiet \
    --manifest-path "$root/python/Cargo.toml" \
    --target-dir "$root/target" \
    --interpreter "$VIRTUAL_ENV/bin/python" \
    --out "$wheels" >&2
wheel=$(ls "$wheels"/plastic-*.whl)
"$VIRTUAL_ENV/bin/python" -m pip install --quiet --no-deps --no-index --force-reinstall "$wheel" >&2
echo "[python] installed $(basename "$wheel") into $VIRTUAL_ENV" >&2
