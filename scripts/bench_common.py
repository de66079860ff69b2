"""What the benchmarks against published scripts share (`bench_backpropamine.py`, `bench_stpn.py`).

Both patch a temporary copy of a published training script, time its updates with its own timer
(it prints the seconds spent on every `--pe` iterations) against `plastic bench train` in the same
setting, alternately, in the same sitting and with the same CPU threads, and print medians.
"""

import json
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def patch(text: str, replacements: list[tuple[str, str]], source: Path, what: str) -> str:
    """`text` with each `old` replaced by `new`; each must occur exactly once, else the script is not
    the one this benchmark knows how to patch (`what` says where to get it)."""
    for old, new in replacements:
        if text.count(old) != 1:
            sys.exit(f"{source} is not the script this benchmark knows how to patch ({what}): {old.strip()!r}")
        text = text.replace(old, new)
    return text


def thread_env(environ: dict, threads: int) -> dict:
    """Both sides' thread pools (OpenMP for PyTorch and libtorch, rayon for plastic's own loops)."""
    return dict(environ, OMP_NUM_THREADS=str(threads), RAYON_NUM_THREADS=str(threads))


def script_rate(cmd: list[str], cwd: Path, env: dict, env_steps: int, iters: int) -> float:
    """Median env-steps/s of a script run as `cmd` (with `--pe 1` and `iters + 1` iterations), from
    its own per-iteration timings after the first (warm-up); `env_steps` per iteration."""
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"the script failed ({' '.join(cmd)}):\n{out.stderr[-3000:]}")
    seconds = [float(s) for s in re.findall(r"Time spent on last 1 iters:\s+([0-9.eE+-]+)", out.stdout)]
    if len(seconds) != iters + 1:
        sys.exit(f"expected {iters + 1} timings from the script, got {len(seconds)}")
    return env_steps / statistics.median(seconds[1:])


def plastic_json(binary: Path, args: list[str], env: dict) -> dict:
    out = subprocess.run([str(binary), *args, "--json"], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"plastic {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def plastic_rate(binary: Path, setting: list[str], threads: int, updates: int, device: str, env: dict) -> float:
    args = ["bench", "train", *setting, "--set", f"run.threads={threads}", "--updates", str(updates)]
    args += ["--device", device]
    return plastic_json(binary, args, env)["env_steps_per_second"]


def alternate(round_: int, sides: list[tuple[str, Callable[[], float]]], results: dict) -> None:
    """Measures each side once, appending to `results[side]`; odd rounds in reverse order, so that
    neither side always meets the same load."""
    for side, measure in sides if round_ % 2 == 0 else sides[::-1]:
        results[side].append(measure())


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"
