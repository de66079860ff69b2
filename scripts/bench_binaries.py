"""Whole training updates of two `plastic` binaries, side by side in one sitting.

    scripts/with-env.sh python scripts/bench_binaries.py OLD_BINARY NEW_BINARY [--rounds 3]

Runs `plastic bench train` on Backpropamine's maze config (simple neuromodulation, H 100) at
B 30 and B 512 with each binary in turn, alternating within every round so that the machine's
load falls on both alike, and prints each binary's median env-steps/s with its range and the
new/old ratio of every round. A change to the engine should leave the ratios around 1.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = "configs/maze-backpropamine-simple.toml"
BATCHES = (30, 512)


def rate(binary: str, batch: int, threads: int, updates: int) -> float:
    args = [binary, "bench", "train", CONFIG, "--set", f"env.num_envs={batch}"]
    args += ["--set", f"run.threads={threads}", "--updates", str(updates), "--json"]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["env_steps_per_second"]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--threads", type=int, default=2, help="run.threads, both binaries")
    parser.add_argument("--updates", type=int, default=5, help="timed updates per measurement")
    args = parser.parse_args()
    print("| B | old env-steps/s | new env-steps/s | new/old per round |")
    print("|---|---|---|---|")
    for batch in BATCHES:
        old, new = [], []
        for i in range(args.rounds):
            # Alternate which binary goes first, so neither always meets a warmer machine.
            order = [(args.old, old), (args.new, new)]
            for binary, rates in order if i % 2 == 0 else reversed(order):
                rates.append(rate(binary, batch, args.threads, args.updates))
        ratios = ", ".join(f"{n / o:.3f}" for o, n in zip(old, new))
        print(f"| {batch} | {spread(old)} | {spread(new)} | {ratios} |", flush=True)


if __name__ == "__main__":
    main()
