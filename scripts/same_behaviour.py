"""Checks that two `plastic` binaries train the same: checkpoints byte for byte, TensorBoard
scalars value for value, and a run one binary started resumed by the other.

    scripts/with-env.sh python scripts/same_behaviour.py OLD_BINARY NEW_BINARY [--out DIR]

For each config below, both binaries train the same short run; then the new binary resumes a
copy of the old binary's run cut back to its middle checkpoint (as a kill leaves it), and must
write the checkpoints the old binary wrote. Wall-clock values (`t` in the records, `time/`
scalars) are the only things left out. Exits 1 if anything differs, after naming each file or
scalar that does.
"""

import argparse
import csv
import json
import pathlib
import shutil
import subprocess
import sys

from tensorboard.backend.event_processing import event_accumulator

# (config, environment steps): short, but past a checkpoint, an evaluation and a log interval.
CASES = [
    ("configs/maze-small.toml", 12_000),
    ("configs/maze-backpropamine-simple.toml", 24_000),
    ("configs/bandit-dependent-easy.toml", 24_000),
]
# Every interval small enough that each kind of output is written in so few steps.
SETTINGS = [
    "log.every=1",
    "log.histograms_every=2",
    "log.images_every=1000000",
    "log.eval_every=2",
    "log.eval_episodes=30",
    "log.checkpoint_every=2",
    "log.keep_checkpoints=100",
]


def plastic(binary, *args):
    done = subprocess.run([binary, *map(str, args)], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{binary} {' '.join(map(str, args))} failed:\n{done.stderr}")


def train(binary, config, steps, out):
    sets = [a for s in SETTINGS + [f"run.total_steps={steps}"] for a in ("--set", s)]
    plastic(binary, "train", config, "--out", out, *sets)


def cut_to_middle(run, into):
    """A copy of a finished run as a kill after its middle checkpoint would leave it."""
    shutil.copytree(run, into)
    updates = sorted(int(p.name) for p in (into / "checkpoints").iterdir())
    middle = updates[len(updates) // 2 - 1]
    for folder in ("checkpoints", "best"):
        for p in (into / folder).iterdir():
            if int(p.name) > middle:
                shutil.rmtree(p)
    (into / "done.json").unlink()


def scalars(run):
    acc = event_accumulator.EventAccumulator(str(run), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {
        tag: [(e.step, e.value) for e in acc.Scalars(tag)]
        for tag in acc.Tags()["scalars"]
        if not tag.startswith("time/")
    }


def without_time(path):
    """A record file's rows without its wall-clock column `t`."""
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k != "t"} for row in csv.DictReader(f)]


def differences(a, b, checkpoints_only=False):
    """What differs between two finished run folders, as readable lines."""
    found = []
    kept = ("checkpoints", "best") if checkpoints_only else None

    def files(run):
        return sorted(
            p.relative_to(run)
            for p in run.rglob("*")
            if p.is_file() and (kept is None or p.relative_to(run).parts[0] in kept)
        )

    files_a, files_b = files(a), files(b)
    names = lambda files: {str(f) for f in files if not f.name.startswith("events.out")}
    if names(files_a) != names(files_b):
        found.append(f"files differ: {sorted(names(files_a) ^ names(files_b))}")
    for rel in files_a:
        if rel.name.startswith("events.out") or not (b / rel).exists():
            continue
        if rel.suffix == ".csv":
            same = without_time(a / rel) == without_time(b / rel)
        else:
            same = (a / rel).read_bytes() == (b / rel).read_bytes()
        if not same:
            found.append(f"{rel} differs")
    if checkpoints_only:
        return found
    sa, sb = scalars(a), scalars(b)
    if sa.keys() != sb.keys():
        found.append(f"scalar tags differ: {sorted(sa.keys() ^ sb.keys())}")
    for tag in sorted(sa.keys() & sb.keys()):
        if sa[tag] != sb[tag]:
            first = next((x, y) for x, y in zip(sa[tag] + [None], sb[tag] + [None]) if x != y)
            found.append(f"scalar {tag} differs first at {first}")
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--out", default="/tmp/same-behaviour")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    report = []
    for config, steps in CASES:
        name = pathlib.Path(config).stem
        old, new, mixed = out / name / "old", out / name / "new", out / name / "resumed"
        train(args.old, config, steps, old)
        train(args.new, config, steps, new)
        cut_to_middle(old, mixed)
        plastic(args.new, "resume", mixed)
        for what, other in [("trained by the new binary", new), ("resumed by it", mixed)]:
            found = differences(old, other, checkpoints_only=other is mixed)
            report.append({"config": config, "steps": steps, "case": what, "differences": found})
            print(f"{config} {what}: {'identical' if not found else '; '.join(found)}")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    sys.exit(1 if any(r["differences"] for r in report) else 0)


if __name__ == "__main__":
    main()
