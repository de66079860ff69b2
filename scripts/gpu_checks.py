"""Every GPU check in one call, for a machine with an NVIDIA GPU and PyTorch but no Rust.

Given a `plastic` binary built elsewhere without the Gymnasium feature
(`cargo build --release --no-default-features`), runs, on CUDA:
- `plastic info`, which must report CUDA;
- `plastic bench core` at B 30, 1024 and 8192 (T 200, H 100, simple neuromodulation), with the
  hand-written backward pass (`--bptt fused`) and with autograd;
- `plastic bench gradients`: the hand-written pass in libtorch operations (`--bptt ops`, what
  `fused` runs on CUDA) against autograd, on the same weights and batch, in f64 and f32, for
  the plastic RNN under simple and retroactive modulation and the plastic LSTM: each
  parameter's largest gradient difference relative to autograd's largest entry, which must
  stay within `GRADIENT_TOLERANCE`;
- `plastic bench train` in Backpropamine's maze setting at B 30, 256 and 1024;
- `--train-minutes` of training on the 13×13 maze, stopped as Ctrl-C would stop it (a
  checkpoint is saved), and what it logged;
and prints one JSON object with everything (a check that fails is recorded with its error and
the others still run); it exits with status 1 if a gradient check failed. libtorch comes from this machine's PyTorch (`LD_LIBRARY_PATH` is set to
its `lib/`), so the binary must be built against the same torch version (2.11.0).

    python3 scripts/gpu_checks.py path/to/plastic --out results/ [--train-minutes 10]

`--device cpu --core-batches 30 --train-batches 30 --train-minutes 0.5 --gradient-batch 4
--gradient-steps 20` runs the checks on the CPU, small: a dry run of the script itself (and
a real check of the gradients there).
"""

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = "configs/maze-backpropamine-simple.toml"

# The largest relative gradient error `bench gradients` may report. f64: what
# agents/tests/fused.rs holds every engine to on the CPU (measured there at B 30, T 200, H 100:
# under 1e-14). f32: engines that sum in different orders drift apart by rounding, carried
# through the traces over the steps: on the CPU at B 30, T 200, H 100 the operations engine
# is within 2.5e-6 of f32 autograd and the host loops within 5.1e-5 (retroactive
# modulation, the worst of the three cores); 1e-3 leaves room for CUDA's own orders of
# summation, while a wrong derivative (errors of 1e-2 to 1 in the f64 tests) still fails.
GRADIENT_TOLERANCE = {"f64": 1e-10, "f32": 1e-3}
# The cores checked: Backpropamine's (simple neuromodulation), retroactive modulation and the
# plastic LSTM, each with `bench gradients`' other settings at their defaults.
GRADIENT_CORES = ([], ["--set", "modulation=retroactive"], ["--set", "kind=plastic-lstm"])


def torch_env() -> dict:
    """The environment with this machine's torch libraries on the loader's path."""
    import torch  # Only its folder is needed: plastic links the same libtorch.

    lib = str(Path(torch.__file__).parent / "lib")
    paths = [lib, *filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(":"))]
    return dict(os.environ, LD_LIBRARY_PATH=":".join(paths))


def run_json(binary: Path, args: list[str], env: dict, timeout: float) -> dict:
    """`plastic <args> --json`, parsed, or the error it gave."""
    started = time.monotonic()
    try:
        out = subprocess.run(
            [str(binary), *args, "--json"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"args": args, "error": f"timed out after {timeout:.0f} s"}
    seconds = round(time.monotonic() - started, 1)
    if out.returncode != 0:
        return {"args": args, "error": out.stderr.strip()[-2000:], "status": out.returncode, "seconds": seconds}
    return {"args": args, "seconds": seconds, "result": json.loads(out.stdout.strip().splitlines()[-1])}


def last_rows(path: Path, n: int) -> list[dict]:
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))[-n:]


def gradient_checks(binary: Path, device: str, batch: str, steps: str, env: dict) -> dict:
    """The operations engine against autograd on `device`, every core of `GRADIENT_CORES` in
    f64 and f32; `ok` only if every run gave errors within `GRADIENT_TOLERANCE`."""
    checks = []
    for core in GRADIENT_CORES:
        for precision, tolerance in GRADIENT_TOLERANCE.items():
            args = ["bench", "gradients", "--device", device, "--bptt", "ops", "--precision", precision]
            check = run_json(binary, [*args, "--batch", batch, "--steps", steps, *core], env, 600)
            error = check.get("result", {}).get("max_relative_error")
            check["tolerance"] = tolerance
            check["within_tolerance"] = error is not None and error <= tolerance
            checks.append(check)
    return {"checks": checks, "ok": all(c["within_tolerance"] for c in checks)}


def train(binary: Path, out: Path, minutes: float, device: str, env: dict) -> dict:
    """Trains for `minutes`, then interrupts as Ctrl-C does; reports what the run logged."""
    run = out / f"maze-{device}"
    cmd = [str(binary), "train", CONFIG, "--device", device, "--out", str(run)]
    with (out / "train.log").open("w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            status = proc.wait(timeout=minutes * 60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # saves a checkpoint after the current update
            status = proc.wait(timeout=300)
    done = run / "done.json"
    return {
        "command": " ".join(cmd),
        "minutes": minutes,
        # 130: stopped by the interrupt, as planned; 0: the run finished first.
        "status": status,
        "progress": json.loads(done.read_text()) if done.is_file() else None,
        "checkpoints": sorted(p.name for p in (run / "checkpoints").glob("[0-9]*")),
        "evaluations": last_rows(run / "evaluations.csv", 3),
        "log_tail": (out / "train.log").read_text()[-2000:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", type=Path, help="plastic, built without the Gymnasium feature")
    parser.add_argument("--out", type=Path, default=Path("gpu-checks"), help="folder for the run and logs")
    parser.add_argument("--train-minutes", type=float, default=10.0)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--core-batches", default="30,1024,8192", help="B of `bench core`, comma-separated")
    parser.add_argument("--train-batches", default="30,256,1024", help="B of `bench train`, comma-separated")
    parser.add_argument("--gradient-batch", default="30", help="B of `bench gradients`")
    parser.add_argument("--gradient-steps", default="200", help="T of `bench gradients`")
    args = parser.parse_args()
    if not args.binary.is_file():
        sys.exit(f"{args.binary} does not exist: build plastic without the gym feature and pass its path")
    args.out.mkdir(parents=True, exist_ok=True)
    env = torch_env()

    summary = {"info": run_json(args.binary, ["info"], env, 120)}
    summary["cuda"] = bool(summary["info"].get("result", {}).get("cuda_available"))
    summary["device"] = args.device
    summary["bench_core"] = [
        run_json(
            args.binary,
            ["bench", "core", "--device", args.device, "--batch", str(batch), "--bptt", bptt],
            env,
            600,
        )
        for batch in args.core_batches.split(",")
        for bptt in ("fused", "autograd")
    ]
    summary["gradients"] = gradient_checks(args.binary, args.device, args.gradient_batch, args.gradient_steps, env)
    summary["bench_train"] = [
        run_json(
            args.binary,
            ["bench", "train", CONFIG, "--device", args.device, "--set", f"env.num_envs={batch}"],
            env,
            600,
        )
        for batch in args.train_batches.split(",")
    ]
    if args.train_minutes > 0:
        summary["train"] = train(args.binary, args.out, args.train_minutes, args.device, env)
    text = json.dumps(summary, indent=1)
    (args.out / "summary.json").write_text(text)
    print(text)
    if not summary["gradients"]["ok"]:
        sys.exit("a gradient check failed: see `gradients` in the summary")


if __name__ == "__main__":
    main()
