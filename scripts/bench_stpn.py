"""Whole training updates of plastic's STPN core against the STPN authors' own maze script.

Runs NeuromorphicComputing/STPN's `Maze/Scripts/run_maze.py` (Rodriguez, Guo & Moraitis, ICML
2022) with its STPN unit in the setting of its maze config `Maze/config/STPN_Maze_h55.json`
(13×13 maze, 512 episodes of 200 steps per update, H 55) and `plastic bench train` with
`core.kind = "stpn"` in the same setting (the same env-steps per update, one update each),
alternately, in the same sitting, with the same number of CPU threads, and prints each one's
median env-steps/s, the range over rounds, and the ratio of the medians.

Their script runs in a patched copy of the checkout in a temporary folder (nothing is written
anywhere else; their code stays outside this repository): on the CPU (`--gpu -1`) with torch's
thread count set; its network returns 7 values (the 7th its energy) where the script, without
`--eval-energy`, unpacks 6, so the copy unpacks the 7th too and drops it, rather than running
the energy bookkeeping `--eval-energy` adds; as in `bench_backpropamine.py`, `--pe 1` does not
switch on its per-step printout, and the optimiser steps from the first update (no 100-update
burn-in). Its own timer is used: it prints the seconds spent on every `--pe` iterations, and
the first interval (warm-up) is dropped. Both sides keep their defaults otherwise: plastic's
STPN config on the same maze and sizes (`--plastic-engine` picks `a2c.bptt`).

    git clone https://github.com/NeuromorphicComputing/STPN /tmp/stpn/STPN
    scripts/with-env.sh python scripts/bench_stpn.py /tmp/stpn/STPN --threads 2
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench_common import REPO, alternate, patch, plastic_rate, script_rate, spread, thread_env

BATCH, STEPS, HIDDEN = 512, 200, 55
# Their config's training command (`command.train`), without what the benchmark sets itself
# (`--nbiter`, `--pe`, `--save_every`, `--gpu`) and without `--eval-energy`.
THEIRS = (
    f"--net_type stpn --bs {BATCH} --eplen {STEPS} --hs {HIDDEN} --type stpn --lr 1e-4 --l2 0 --addpw 3 "
    "--blossv 0.1 --bent 0.03 --rew 10 --rsp 1 --da tanh --msize 13 --wp 0.0 --gc 4.0 "
    "--config_file_path config/STPN_Maze_h55.json --rngseed 0"
).split()
# plastic's STPN on Backpropamine's 13×13, 200-step maze at their batch and size.
OURS = [
    "configs/maze-backpropamine-simple.toml",
    "--set",
    "core.kind=stpn",
    "--set",
    "core.modulation=none",
    "--set",
    f"core.hidden={HIDDEN}",
    "--set",
    f"env.num_envs={BATCH}",
]
SCRIPT = Path("Maze/Scripts/run_maze.py")
WHERE = "https://github.com/NeuromorphicComputing/STPN"


def patched_copy(checkout: Path, folder: Path, threads: int) -> Path:
    """A copy of the checkout as `folder/STPN` (their modules import `STPN.…`), its `run_maze.py`
    patched; returns the copy."""
    source = checkout / SCRIPT
    if not source.is_file():
        sys.exit(f"{source} does not exist: pass the folder of a checkout of {WHERE}")
    copy = folder / "STPN"
    shutil.copytree(checkout, copy, ignore=shutil.ignore_patterns(".git"))
    replacements = [
        # After the imports, before anything runs.
        ("import platform\n", f"import platform\ntorch.set_num_threads({threads})\n"),
        # Their STPN network returns its energy as a 7th value.
        (
            "                y, v, hidden, hebb, et, pw = net(",
            "                y, v, hidden, hebb, et, pw, *_ = net(",
        ),
        # `--pe 1` times every iteration, and would also print every step of every iteration.
        ("            PRINTTRACE = 1  # noqa\n", "            PRINTTRACE = 0  # noqa\n"),
        # The optimiser steps from the first update, as plastic's does.
        ("            if numiter > 100:  # Burn-in", "            if True:  # No burn-in"),
    ]
    script = copy / SCRIPT
    script.write_text(patch(source.read_text(), replacements, source, WHERE))
    return copy


def their_rate(copy: Path, iters: int, env: dict) -> float:
    """Median env-steps/s of their script over `iters` timed updates after one untimed one."""
    results = copy.parent / "results"
    cmd = [sys.executable, "-W", "ignore", str(copy / SCRIPT), *THEIRS, "--gpu", "-1"]
    cmd += ["--nbiter", str(iters + 1), "--pe", "1", "--save_every", "1000000"]
    cmd += ["--base-path-experiments", str(copy / "Maze"), "--path-experiment-results", str(results)]
    env = dict(env, PYTHONPATH=os.pathsep.join([str(copy.parent), env.get("PYTHONPATH", "")]))
    return script_rate(cmd, copy.parent, env, BATCH * STEPS, iters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help=f"a checkout of {WHERE}")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads, both sides")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians over them)")
    parser.add_argument("--iters", type=int, default=3, help="timed updates per round, each side")
    parser.add_argument("--plastic", type=Path, default=REPO / "target/release/plastic")
    parser.add_argument(
        "--plastic-engine",
        default="auto",
        help='plastic\'s a2c.bptt ("auto": the hand-written pass in host loops on the CPU; "autograd")',
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    if args.threads < 1 or args.rounds < 1 or args.iters < 1:
        parser.error("counts must be ≥ 1")
    if not args.plastic.is_file():
        sys.exit(f"{args.plastic} does not exist: build it first (make build)")
    env = thread_env(os.environ, args.threads)
    ours = [*OURS, "--set", f"a2c.bptt={args.plastic_engine}"]

    results = {"theirs": [], "plastic": []}
    with tempfile.TemporaryDirectory(prefix="stpn-") as folder:
        copy = patched_copy(args.checkout, Path(folder), args.threads)
        sides = [
            ("theirs", lambda: their_rate(copy, args.iters, env)),
            ("plastic", lambda: plastic_rate(args.plastic, ours, args.threads, args.iters, "cpu", env)),
        ]
        for round_ in range(args.rounds):
            alternate(round_, sides, results)
            print(
                f"round {round_ + 1}: STPN's script {results['theirs'][-1]:,.0f}, "
                f"plastic {results['plastic'][-1]:,.0f} env-steps/s",
                file=sys.stderr,
            )

    theirs, ours_rates = results["theirs"], results["plastic"]
    ratio = statistics.median(ours_rates) / statistics.median(theirs)
    print(
        f"Whole training updates of STPN (B {BATCH}, H {HIDDEN}, 13×13 maze, {STEPS} steps), env-steps/s, "
        f"median (range) of {args.rounds} rounds, {args.threads} threads:"
    )
    print(f"  STPN's run_maze.py {spread(theirs):>26}   plastic ({args.plastic_engine}) {spread(ours_rates):>26}")
    print(f"  ratio of the medians: {ratio:.1f}×")
    if args.json:
        summary = {"threads": args.threads, "rounds": args.rounds, "engine": args.plastic_engine}
        print(json.dumps(summary | {"theirs": theirs, "plastic": ours_rates, "ratio_of_medians": ratio}))


if __name__ == "__main__":
    main()
