"""Whole training updates of plastic against the published Backpropamine script, side by side.

Runs uber-research/backpropamine's `maze/batch.py` (Miconi et al. 2019, the script the paper's
maze results come from) and `plastic bench train` in the same setting, alternately, in the same
sitting, with the same number of CPU threads, and prints each one's median env-steps/s and the
ratio. Ratios only hold when both sides run on the same machine at the same time: these machines
are shared, so the rounds alternate and the ranges are printed too.

The script is published for CUDA. A patched copy in a temporary folder runs it on the CPU
(every `.cuda()` removed, torch's thread count set); nothing of it is written anywhere else.
Its own timer is used: it prints the seconds spent on every `--pe` iterations, and the first
interval (warm-up) is dropped. Two more patches keep the comparison fair to the script:
`--pe 1` also switches on its per-step printout (`PRINTTRACE`: a line per step with a mean over
the whole B×H×H trace), which the copy leaves off, and the script takes no optimiser step in its
first 100 iterations (a burn-in), which the copy takes from the first update, as plastic does.
The plastic side runs on the CPU, as the script does, unless `--device` says otherwise.

Then the roofline: the machine's memory bandwidth (`plastic bench memory`, STREAM's copy
kernel) next to what the trace passes achieve (`plastic bench traces`).

    git clone https://github.com/uber-research/backpropamine /tmp/backpropamine
    scripts/with-env.sh python scripts/bench_backpropamine.py /tmp/backpropamine --threads 2
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench_common import REPO, alternate, patch, plastic_json, plastic_rate, spread, thread_env
from bench_common import script_rate as timed_rate

# Backpropamine's maze setting (the paper's): 13×13 maze, 30 episodes of 200 steps per update,
# 100 neurons. Each setting: the script's arguments, and plastic's config and overrides.
MAZE = ["--msize", "13", "--eplen", "200", "--rsp", "1", "--lr", "1e-4"]
SETTINGS = {
    "simple": {
        "script": ["--type", "modplast", "--bs", "30", "--hs", "100"],
        "plastic": ["configs/maze-backpropamine-simple.toml"],
    },
    "retroactive": {
        "script": ["--type", "modul", "--bs", "30", "--hs", "100"],
        "plastic": ["configs/maze-backpropamine-retroactive.toml"],
    },
    # The script has no plastic LSTM: against its simple neuromodulation, the same task.
    "plastic-lstm": {
        "script": ["--type", "modplast", "--bs", "30", "--hs", "100"],
        "plastic": [
            "configs/maze-backpropamine-simple.toml",
            "--set",
            "core.kind=plastic-lstm",
        ],
    },
    # STPN's maze setting (Rodriguez et al. 2022): batch 512, 73 neurons.
    "stpn": {
        "script": ["--type", "modplast", "--bs", "512", "--hs", "73"],
        "plastic": [
            "configs/maze-backpropamine-simple.toml",
            "--set",
            "env.num_envs=512",
            "--set",
            "core.hidden=73",
        ],
    },
}


def patched_script(checkout: Path, folder: Path, threads: int) -> Path:
    """A copy of maze/batch.py that runs on the CPU with `threads` threads."""
    source = checkout / "maze" / "batch.py"
    if not source.is_file():
        sys.exit(
            f"{source} does not exist: pass the folder of a checkout of https://github.com/uber-research/backpropamine"
        )
    text = source.read_text().replace(".cuda()", "")
    replacements = [
        # After the imports, before anything runs.
        ("import platform\n", f"import platform\ntorch.set_num_threads({threads})\n"),
        # `--pe 1` times every iteration, and would also print every step of every iteration.
        ("            PRINTTRACE = 1\n", "            PRINTTRACE = 0\n"),
        # The optimiser steps from the first update, as plastic's does: skipping the step in
        # the first 100 iterations would make the timed ones cheaper.
        ("        if numiter > 100:  # Burn-in", "        if True:  # No burn-in"),
    ]
    text = patch(text, replacements, source, "uber-research/backpropamine")
    if ".cuda()" in text:
        sys.exit(f"{source} is not the script this benchmark knows how to patch")
    patched = folder / "batch.py"
    patched.write_text(text)
    return patched


def script_rate(script: Path, args: list[str], iters: int, env: dict) -> float:
    """Median env-steps/s of the script over `iters` timed iterations after one untimed one."""
    batch = int(args[args.index("--bs") + 1])
    steps = int(MAZE[MAZE.index("--eplen") + 1])
    cmd = [sys.executable, "-W", "ignore", str(script), *MAZE, *args]
    cmd += ["--nbiter", str(iters + 1), "--pe", "1", "--save_every", "1000000"]
    return timed_rate(cmd, script.parent, env, batch * steps, iters)


def shape(script_args: list[str]) -> tuple[int, int]:
    """(B, H) of a setting."""
    return int(script_args[script_args.index("--bs") + 1]), int(script_args[script_args.index("--hs") + 1])


# The passes a step of simple neuromodulation makes over its trace (`plastic bench traces`).
STEP_PASSES = ("forward", "backward update", "backward input")


def trace_rate(binary: Path, shape: tuple[int, int], threads: int, env: dict) -> tuple[float, float]:
    """GB/s and GFLOP/s of one step's trace passes together: their bytes and flops over their time."""
    batch, hidden = shape
    args = ["bench", "traces", "--batch", str(batch), "--hidden", str(hidden), "--threads", str(threads)]
    passes = [p for p in plastic_json(binary, args, env)["passes"] if p["pass"] in STEP_PASSES]
    seconds = sum(p["seconds"] for p in passes)
    return sum(p["bytes"] for p in passes) / seconds / 1e9, sum(p["flops"] for p in passes) / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a checkout of uber-research/backpropamine")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads, both sides")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians over them)")
    parser.add_argument("--iters", type=int, default=5, help="timed updates per round, each side")
    parser.add_argument(
        "--settings",
        default="simple,retroactive,plastic-lstm",
        help=f"comma-separated, of: {', '.join(SETTINGS)}",
    )
    parser.add_argument("--plastic", type=Path, default=REPO / "target/release/plastic")
    parser.add_argument(
        "--device",
        default="cpu",
        help="plastic's device (`plastic bench train --device`); the script runs on the CPU",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    settings = args.settings.split(",")
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or args.threads < 1 or args.rounds < 1 or args.iters < 1:
        parser.error(f"unknown settings {unknown} (known: {', '.join(SETTINGS)})" if unknown else "counts must be ≥ 1")
    if not args.plastic.is_file():
        sys.exit(f"{args.plastic} does not exist: build it first (make build)")
    env = thread_env(os.environ, args.threads)

    results = {s: {"script": [], "plastic": []} for s in settings}
    # The trace passes at each setting's size (B, H): at B 30, H 100 a trace (1.2 MB) fits in
    # a core's L2 cache; at STPN's B 512, H 73 (11 MB) it does not.
    sizes = sorted({shape(SETTINGS[name]["script"]) for name in settings})
    memory, traces = [], {}
    with tempfile.TemporaryDirectory(prefix="backpropamine-") as folder:
        script = patched_script(args.checkout, Path(folder), args.threads)
        for round_ in range(args.rounds):
            for name in settings:
                setting = SETTINGS[name]
                sides = [
                    ("script", lambda s=setting: script_rate(script, s["script"], args.iters, env)),
                    (
                        "plastic",
                        lambda s=setting: plastic_rate(
                            args.plastic, s["plastic"], args.threads, args.iters, args.device, env
                        ),
                    ),
                ]
                alternate(round_, sides, results[name])
                print(
                    f"round {round_ + 1} {name}: script {results[name]['script'][-1]:,.0f}, "
                    f"plastic {results[name]['plastic'][-1]:,.0f} env-steps/s",
                    file=sys.stderr,
                )
            memory.append(plastic_json(args.plastic, ["bench", "memory", "--threads", str(args.threads)], env))
            for size in sizes:
                traces.setdefault(size, []).append(trace_rate(args.plastic, size, args.threads, env))

    print(f"Whole training updates, env-steps/s, median (range) of {args.rounds} rounds, {args.threads} threads:")
    summary = {"threads": args.threads, "rounds": args.rounds, "settings": {}}
    for name in settings:
        s, p = results[name]["script"], results[name]["plastic"]
        ratio = statistics.median(p) / statistics.median(s)
        print(f"  {name:13} backpropamine {spread(s):>26}   plastic {spread(p):>26}   {ratio:.1f}×")
        summary["settings"][name] = {"script": s, "plastic": p, "ratio_of_medians": ratio}
    roof = statistics.median(m["best_gb_per_second"] for m in memory)
    print(f"Roofline: memory bandwidth (STREAM copy, {args.threads} threads) {roof:.1f} GB/s; the trace passes of one")
    print("step (forward, backward update, backward input), their bytes over their time:")
    summary |= {"stream_copy_gb_per_second": roof, "traces": {}}
    for (batch, hidden), rates in sorted(traces.items()):
        gb, gflop = statistics.median(r[0] for r in rates), statistics.median(r[1] for r in rates)
        print(f"  B {batch}, H {hidden}: {gb:.1f} GB/s ({100 * gb / roof:.0f}% of the copy), {gflop:.1f} GFLOP/s")
        summary["traces"][f"B{batch}_H{hidden}"] = {"gb_per_second": gb, "gflop_per_second": gflop}
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
