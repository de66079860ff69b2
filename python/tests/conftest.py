"""Shared fixtures: the CLI the numbers are compared with, and a small trained maze agent."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def plastic_bin() -> Path:
    """target/release/plastic (make test builds it first), or $PLASTIC_BIN."""
    path = Path(os.environ.get("PLASTIC_BIN", ROOT / "target" / "release" / "plastic"))
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it with `make build` (make test does)")
    return path


@pytest.fixture(scope="session")
def cli(plastic_bin):
    """Runs the CLI with --json and returns the parsed report."""

    def run(*args: str) -> dict:
        out = subprocess.run([str(plastic_bin), *args, "--json"], check=True, capture_output=True, text=True)
        return json.loads(out.stdout)

    return run


@pytest.fixture(scope="session")
def maze_run(plastic_bin, tmp_path_factory) -> Path:
    """A plastic RNN with simple neuromodulation (configs/maze-small.toml: 9×9 maze, H 100)
    trained for 10 updates (a few seconds): enough to act unlike an untrained one."""
    run = tmp_path_factory.mktemp("runs") / "maze"
    subprocess.run(
        [
            str(plastic_bin),
            "train",
            str(ROOT / "configs" / "maze-small.toml"),
            "--set",
            "run.total_steps=30000",
            "--out",
            str(run),
        ],
        check=True,
        capture_output=True,
    )
    return run


@pytest.fixture()
def copy_of(tmp_path):
    """A copy of a run folder, to damage."""

    def copy(run: Path) -> Path:
        dest = tmp_path / run.name
        shutil.copytree(run, dest)
        return dest

    return copy
