"""scripts/sb3_side_by_side.py's plumbing on a tiny budget: both sides train on masked CartPole
and land in the JSON and the table. The maze task is left out: one RecurrentPPO rollout of 30
episodes and its 10 passes take over a minute of CPU. The comparison itself takes hours (the
command is in docs/ppo.md)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def side_by_side(args, timeout):
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sb3_side_by_side.py"), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_both_sides_train_and_are_reported(plastic_bin, tmp_path):
    out_json, out_md = tmp_path / "side.json", tmp_path / "side.md"
    side_by_side(
        ["--plastic", str(plastic_bin), "--tasks", "cartpole-masked", "--seeds", "1"]
        + ["--steps", "600", "--plastic-steps", "1500", "--json", str(out_json), "--markdown", str(out_md)],
        timeout=300,
    )
    report = json.loads(out_json.read_text())
    assert set(report["results"]) == {"cartpole-masked"}
    for task, sides in report["results"].items():
        # Each side its own budget, rounded up to whole rollouts: plastic's of 16 × 32 steps,
        # RecurrentPPO's of 8 × 32. A random policy's episodes last about 20 steps.
        for side, asked, rollout in [("plastic", 1500, 512), ("sb3", 600, 256)]:
            (run,) = sides[side]
            assert run["seed"] == 0 and asked <= run["steps"] < asked + rollout and run["wall_s"] > 0, (side, run)
            assert run["curve"], (task, side, run)
            steps, seconds, _ = run["curve"][-1]
            assert 0 < steps <= run["steps"] and 0 <= seconds <= run["wall_s"], (task, side, run)
        summary = report["summary"][task]
        # Equal steps: RecurrentPPO's, the fewer; equal wall time: the shorter run's.
        assert summary["equal_steps"] == sides["sb3"][0]["steps"]
        walls = [sides[side][0]["wall_s"] for side in ("plastic", "sb3")]
        assert summary["equal_wall_s"] == [min(walls)]
        for side in ("plastic", "sb3"):
            numbers = summary[side]
            assert numbers["env_steps_per_s"][0] > 0, (side, numbers)
            assert numbers["return_at_equal_steps"][0] is not None, (side, numbers)
            # Plastic's curve past RecurrentPPO's steps is left out of the equal-steps return.
            cut = [v for s, _, v in sides[side][0]["curve"] if s <= summary["equal_steps"]]
            assert numbers["return_at_equal_steps"][0] == cut[-1], (side, numbers)
    table = out_md.read_text()
    assert "sb3_side_by_side.py --plastic" in table
    assert table.count("RecurrentPPO |") == 1, table

    # Reports made apart go into one table without training.
    joined = tmp_path / "joined.md"
    side_by_side(["--from-json", str(out_json), str(out_json), "--markdown", str(joined)], timeout=60)
    assert joined.read_text().count("RecurrentPPO |") == 2


def test_steps_are_one_count_or_one_per_task():
    sys.path.insert(0, str(ROOT / "scripts"))
    from sb3_side_by_side import steps_per_task

    tasks = ["maze-small", "cartpole-masked"]
    assert steps_per_task("1e6", tasks) == {"maze-small": 1_000_000, "cartpole-masked": 1_000_000}
    both = steps_per_task("maze-small=1e6,cartpole-masked=2000000", tasks)
    assert both == {"maze-small": 1_000_000, "cartpole-masked": 2_000_000}
    # A task left out, an unknown one, zero, a fraction and text are refused.
    for bad in ["maze-small=1e6", "maze-small=1,cartpole-masked=1,pong=1", "0", "1.5", "many"]:
        assert steps_per_task(bad, tasks) is None, bad
