"""scripts/gpu_checks.py, which runs every GPU check in one call on a machine that has no Rust,
run here on the CPU, small: the script must keep working with the CLI it drives until a GPU
is at hand."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_checks_run_whole_on_the_cpu(plastic_bin, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "gpu_checks.py"),
            str(plastic_bin),
            "--out",
            str(tmp_path / "checks"),
            "--device",
            "cpu",
            "--core-batches",
            "30",
            "--train-batches",
            "30",
            "--train-minutes",
            "0.1",
            "--gradient-batch",
            "4",
            "--gradient-steps",
            "20",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = json.loads(out.stdout)
    assert summary["device"] == "cpu"
    assert summary["info"].get("result"), summary["info"]
    benches = summary["bench_core"] + summary["bench_train"]
    # Both engines for `bench core`, one `bench train`: each one a measurement, not an error.
    assert len(benches) == 3, benches
    for bench in benches:
        assert "error" not in bench, bench
        assert bench["result"]["env_steps_per_second"] > 0, bench
    engines = {bench["result"]["bptt"] for bench in summary["bench_core"]}
    assert engines == {"fused", "autograd"}, engines
    # The operations engine against autograd, in f64 and f32, for each core: every parameter
    # checked, each run within its tolerance (the script exits with an error otherwise).
    gradients = summary["gradients"]
    assert gradients["ok"] and len(gradients["checks"]) == 6, gradients
    for check in gradients["checks"]:
        result = check["result"]
        assert result["bptt"] == "ops" and result["device"] == "Cpu", check
        assert result["parameters"] and result["max_relative_error"] <= check["tolerance"], check
    assert {c["result"]["precision"] for c in gradients["checks"]} == {"f32", "f64"}
    # Training stopped as Ctrl-C stops it, with a checkpoint saved.
    train = summary["train"]
    assert train["status"] in (0, 130), train
    assert train["checkpoints"], train
