"""Training speed from Python against the CLI (docs/python.md, "Training from Python"): the
same config trained by `plastic train` and by `plastic.Trainer.learn()` (no callback), in
alternating rounds, each in a fresh process (the machine may be shared: noise hits both
alike). Reports the training time read from each run's `episodes.csv` (its wall-clock column,
first update to last) and the whole process's time.

    scripts/with-env.sh python python/bench_learn.py [--config configs/maze-small.toml]
        [--steps 60000] [--rounds 5]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Held-out evaluations only after the last update, where the timing ends: what is timed is
# training alone.
QUIET = {"log.eval_every": 1_000_000, "log.eval_episodes": 8}

LEARN = f"""
import sys, time, plastic
trainer = plastic.Trainer(config=sys.argv[1], out=sys.argv[3], **{QUIET!r})
start = time.perf_counter()
trainer.learn(int(sys.argv[2]))
print(time.perf_counter() - start)
"""


def training_seconds(run: Path) -> float:
    """From the first update's episodes to the last's, by the wall clock `episodes.csv` keeps
    (column `t`, seconds since the run started): start-up (Python's imports) left out."""
    rows = (run / "episodes.csv").read_text().splitlines()[1:]
    times = [float(row.split(",")[2]) for row in rows]
    return max(times) - min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "maze-small.toml"))
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--plastic", default=str(ROOT / "target" / "release" / "plastic"))
    args = parser.parse_args()
    results = {"cli": [], "python": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for who in ("cli", "python"):
                out = Path(tmp) / f"{who}{r}"
                command = {
                    "cli": [args.plastic, "train", args.config, "--total-steps", str(args.steps), "--out", str(out)]
                    + [arg for key, value in QUIET.items() for arg in ("--set", f"{key}={value}")],
                    "python": [sys.executable, "-c", LEARN, args.config, str(args.steps), str(out)],
                }[who]
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True, cwd=tmp)
                results[who].append((training_seconds(out), time.perf_counter() - start))
    for who, rounds in results.items():
        train = statistics.median(t for t, _ in rounds)
        whole = statistics.median(w for _, w in rounds)
        print(f"{who:6}  training {train:7.2f} s (median of {len(rounds)})   whole process {whole:7.2f} s")
    ratio = statistics.median(t for t, _ in results["python"]) / statistics.median(t for t, _ in results["cli"])
    print(f"python / cli training time: {ratio:.3f}")


if __name__ == "__main__":
    main()
