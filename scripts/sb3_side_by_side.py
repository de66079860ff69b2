"""plastic against sb3-contrib's RecurrentPPO, same tasks, one sitting.

    scripts/with-env.sh scripts/python-package.sh     # plastic/Maze-v0 for RecurrentPPO
    scripts/with-env.sh python scripts/sb3_side_by_side.py --seeds 5

For each task and seed it trains `plastic train` with the task's config and RecurrentPPO (an
LSTM of comparable size, on `gymnasium.make` of the same environment), alternating which goes
first, one run at a time, so that the machine's load falls on both alike. Each side trains its
own number of env steps (`--steps` for RecurrentPPO, `--plastic-steps` for plastic, the same by
default: a budget RecurrentPPO finishes in minutes is seconds for plastic). Both sides report
the mean return of their last 100 training episodes (SB3's `rollout/ep_rew_mean`, and
plastic's tag of that name) after each rollout. The JSON (`--json`) holds every run's curve;
the markdown table (`--markdown`) per task and side: training env-steps/s (steps over the
wall-clock seconds of the whole training), the return at equal steps (the fewer of the two
sides' steps), at equal wall time (the shorter of each seed's two runs) and at each side's
last step. `--from-json A.json B.json` writes the table of reports made apart (for example one
task per core) without training anything.

Tasks: `maze-small` (configs/maze-small.toml with PPO, 10 passes of 5 minibatches, against
RecurrentPPO with an LSTM of 100 and the same discount, learning rate, rollout, passes and
minibatch size), `cartpole-masked` (configs/gym-cartpole-masked.toml against rl-baselines3-zoo's
RecurrentPPO hyperparameters for CartPole without velocities).
"""

import argparse
import importlib.util
import json
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EPISODE_WINDOW = 100  # episodes in SB3's (and plastic's) rollout/ep_rew_mean

# plastic's side of the maze: maze-small's task and core with PPO, sb3-contrib's values of the
# keys PPO shares with A2C (docs/ppo.md). B 30 rows in 5 minibatches: 600 samples each. Rewards
# scaled: the actor and the critic share plastic's core (RecurrentPPO gives the critic an LSTM
# of its own), and unscaled returns make the value gradient fill the norm bound.
MAZE_PPO_SECTION = """
[ppo]
n_epochs = 10
minibatches = 5
"""
MAZE_PPO_SETS = [
    "a2c.gae_lambda=0.95",
    "a2c.normalize_advantages=true",
    "a2c.value_coef=0.5",
    "a2c.sum_squares_coef=0.0",
    "a2c.entropy_coef=0.0",
    "a2c.max_grad_norm=0.5",
    "a2c.normalize_rewards=true",
]


def maze_sb3(seed):
    """RecurrentPPO on 30 copies of plastic/Maze-v0 (9×9, 100 steps), LSTM of 100, with
    maze-small's discount and learning rate and plastic's rollout (one whole episode) and
    minibatch size (6 episodes); sb3-contrib's defaults otherwise."""
    import gymnasium
    import plastic  # noqa: F401 (registers plastic/Maze-v0)
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env(lambda: gymnasium.make("plastic/Maze-v0", size=9, len=100), n_envs=30, seed=seed)
    kwargs = {
        "n_steps": 100,
        "batch_size": 600,
        "n_epochs": 10,
        "gamma": 0.9,
        "gae_lambda": 0.95,
        "learning_rate": 1e-3,
        "ent_coef": 0.0,
        "policy_kwargs": {"lstm_hidden_size": 100},
    }
    return env, kwargs


def mask_velocity():
    """The bridge's MaskVelocity wrapper, the one `gym:CartPole-v1?wrappers=MaskVelocity` uses
    (envs/src/gym/bridge.py), loaded from its file: one definition for both sides."""
    spec = importlib.util.spec_from_file_location("plastic_gym_bridge", REPO / "envs" / "src" / "gym" / "bridge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MaskVelocity


def cartpole_masked_sb3(seed):
    """rl-baselines3-zoo's RecurrentPPO hyperparameters for CartPoleNoVel-v1 (ppo_lstm.yml):
    8 environments, observations normalised (not rewards), linear schedules to 0."""
    import gymnasium
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize
    from torch import nn

    wrapper = mask_velocity()
    env = make_vec_env(lambda: wrapper(gymnasium.make("CartPole-v1")), n_envs=8, seed=seed)
    env = VecNormalize(env, norm_obs=True, norm_reward=False)

    def linear(start):
        return lambda remaining: remaining * start

    kwargs = {
        "n_steps": 32,
        "batch_size": 256,
        "n_epochs": 20,
        "gamma": 0.98,
        "gae_lambda": 0.8,
        "ent_coef": 0.0,
        "learning_rate": linear(1e-3),
        "clip_range": linear(0.2),
        "policy_kwargs": {
            "ortho_init": False,
            "activation_fn": nn.ReLU,
            "lstm_hidden_size": 64,
            "enable_critic_lstm": True,
            "net_arch": {"pi": [64], "vf": [64]},
        },
    }
    return env, kwargs


# Per task: plastic's config and its extra section and overrides, RecurrentPPO's environment
# and settings.
TASKS = {
    "maze-small": ("configs/maze-small.toml", MAZE_PPO_SECTION, MAZE_PPO_SETS, maze_sb3),
    "cartpole-masked": ("configs/gym-cartpole-masked.toml", "", [], cartpole_masked_sb3),
}

# Held-out evaluations, pictures, histograms and checkpoints cost plastic time RecurrentPPO
# does not spend: put off to the end of the run (where each happens once; the evaluation of one
# episode), since the comparison reads training episodes only.
NEVER = "1000000000"
QUIET_LOG = [
    "log.every=1",
    f"log.eval_every={NEVER}",
    "log.eval_episodes=1",
    f"log.images_every={NEVER}",
    f"log.histograms_every={NEVER}",
    f"log.checkpoint_every={NEVER}",
]


def plastic_run(binary, task, seed, steps, out):
    """Trains plastic on `task`; its curve from the run's events, timed from the start."""
    config, section, sets, _ = TASKS[task]
    text = (REPO / config).read_text() + section
    config_path = out / f"{task}.toml"
    config_path.write_text(text)
    args = [str(binary), "train", str(config_path), "--seed", str(seed)]
    args += ["--total-steps", str(steps), "--out", str(out / f"plastic-{task}-{seed}")]
    for key in sets + QUIET_LOG + ["run.threads=1"]:
        args += ["--set", key]
    start = time.time()
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.time() - start
    if done.returncode != 0:
        sys.exit(f"error: {shlex.join(args)} failed:\n{done.stderr[-3000:]}")
    curve, steps = events_curve(out / f"plastic-{task}-{seed}", "rollout/ep_rew_mean", start)
    return {"seed": seed, "wall_s": wall, "steps": steps, "curve": curve}


def events_curve(run_dir, tag, start):
    """[env steps, seconds since `start`, value] of `tag` in a run folder's event files, and
    the env steps trained (the last step any scalar was logged at: every update logs, and
    `--total-steps` rounds up to whole updates)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    steps = max(e.step for t in tags for e in acc.Scalars(t))
    curve = [[e.step, e.wall_time - start, e.value] for e in acc.Scalars(tag)] if tag in tags else []
    return curve, steps


def sb3_run(task, seed, steps):
    """Trains RecurrentPPO on `task`, recording its rollout/ep_rew_mean after each rollout."""
    import torch
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.callbacks import BaseCallback

    # One thread, as plastic's runs here (run.threads = 1): small networks, one core each.
    torch.set_num_threads(1)
    env, kwargs = TASKS[task][3](seed)
    model = RecurrentPPO("MlpLstmPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    curve = []

    class Curve(BaseCallback):
        def _on_step(self):
            return True

        def _on_rollout_end(self):
            episodes = self.model.ep_info_buffer
            if episodes:
                mean = statistics.fmean(e["r"] for e in episodes)
                curve.append([self.model.num_timesteps, time.time() - start, mean])

    start = time.time()
    model.learn(total_timesteps=steps, callback=Curve())
    wall = time.time() - start
    env.close()
    return {"seed": seed, "wall_s": wall, "steps": model.num_timesteps, "curve": curve}


def last_return(curve, within_s=float("inf"), within_steps=float("inf")):
    """The curve's last value logged by `within_s` seconds and `within_steps` env steps (None
    when none was)."""
    values = [value for steps, seconds, value in curve if seconds <= within_s and steps <= within_steps]
    return values[-1] if values else None


def median_iqr(values):
    values = [v for v in values if v is not None]
    if not values:
        return "no episode ended"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{q2:.1f} ({q1:.1f}–{q3:.1f})"


def summary(results):
    """Per task and side, the table's numbers. Equal steps: the fewer of the two sides' steps
    (the same for every seed); equal wall time: the shorter of the two runs of each seed."""
    rows = {}
    for task, sides in results.items():
        runs = {side: sides[side] for side in ("plastic", "sb3")}
        common_steps = min(r["steps"] for side in runs.values() for r in side)
        common_walls = [min(p["wall_s"], s["wall_s"]) for p, s in zip(runs["plastic"], runs["sb3"])]
        rows[task] = {
            side: {
                "steps": [r["steps"] for r in side_runs],
                "env_steps_per_s": [r["steps"] / r["wall_s"] for r in side_runs],
                "final_return": [last_return(r["curve"]) for r in side_runs],
                "return_at_equal_steps": [last_return(r["curve"], within_steps=common_steps) for r in side_runs],
                "return_at_equal_wall_time": [
                    last_return(r["curve"], within_s=wall) for r, wall in zip(side_runs, common_walls)
                ],
            }
            for side, side_runs in runs.items()
        }
        rows[task]["equal_steps"] = common_steps
        rows[task]["equal_wall_s"] = common_walls
    return rows


def markdown(reports):
    """The table of one or more reports (each a dict as `main` writes to the JSON)."""
    lines = ["# plastic and sb3-contrib's RecurrentPPO side by side", ""]
    for report in reports:
        lines += [f"Command: `{report['command']}`", ""]
    first = reports[0]
    lines += [
        (
            f"Machine: {first['machine']}; {first['date']}. Runs alternating one at a time. "
            "Return: mean of the last 100 training episodes (`rollout/ep_rew_mean`), median "
            "(IQR) across seeds; env steps and seconds per run, median across seeds."
        ),
        "",
        (
            "| task | side | seeds | env steps | training env-steps/s | return at equal steps | "
            "return at equal wall time | return at its last step |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        for task, sides in report["summary"].items():
            ours, theirs = sides["plastic"], sides["sb3"]
            rate = statistics.median(ours["env_steps_per_s"])
            their_rate = statistics.median(theirs["env_steps_per_s"])
            config, section = TASKS[task][0], TASKS[task][1]
            at_steps = f"at {sides['equal_steps']:,}: "
            at_wall = f"at {statistics.median(sides['equal_wall_s']):,.0f} s: "
            for name, side, speed in [
                (
                    f"plastic `{config}`" + (" with PPO" if section else ""),
                    ours,
                    f"{rate:,.0f} ({rate / their_rate:,.1f}×)",
                ),
                ("sb3-contrib RecurrentPPO", theirs, f"{their_rate:,.0f}"),
            ]:
                lines.append(
                    f"| {task} | {name} | {len(side['steps'])} | {statistics.median(side['steps']):,.0f} | "
                    f"{speed} | {at_steps}{median_iqr(side['return_at_equal_steps'])} | "
                    f"{at_wall}{median_iqr(side['return_at_equal_wall_time'])} | "
                    f"{median_iqr(side['final_return'])} |"
                )
    return "\n".join(lines) + "\n"


def steps_per_task(text, tasks):
    """`--steps`: one count (`1000000`, `1e6`) for every task, or `TASK=N,...` naming each of
    `tasks`; None when it is neither or a count is not a whole number of at least 1."""

    def count(value):
        try:
            n = float(value)
        except ValueError:
            return None
        return int(n) if n >= 1 and n.is_integer() else None

    if "=" not in text:
        n = count(text)
        return None if n is None else dict.fromkeys(tasks, n)
    given = dict(item.partition("=")[::2] for item in text.split(","))
    steps = {task: count(given.get(task, "")) for task in tasks}
    return steps if None not in steps.values() and set(given) <= set(tasks) else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plastic", default=str(REPO / "target" / "release" / "plastic"))
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: " + ", ".join(TASKS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--steps",
        default="1000000",
        help="RecurrentPPO's env steps per run: N for every task, or TASK=N,... (e.g. maze-small=1e5,cartpole-masked=1e5)",
    )
    parser.add_argument("--plastic-steps", help="plastic's env steps per run, as --steps (default: --steps)")
    parser.add_argument("--runs", help="folder for plastic's runs (default: a temporary one)")
    parser.add_argument("--json", default="runs/sb3-side-by-side.json")
    parser.add_argument("--markdown", default="docs/results/sb3-side-by-side.md")
    parser.add_argument(
        "--from-json", nargs="+", metavar="JSON", help="write the table of these reports; train nothing"
    )
    args = parser.parse_args()
    if args.from_json:
        reports = [json.loads(Path(path).read_text()) for path in args.from_json]
        write(args.markdown, markdown(reports))
        return
    tasks = args.tasks.split(",")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")
    steps = {"sb3": steps_per_task(args.steps, tasks)}
    steps["plastic"] = steps["sb3"] if args.plastic_steps is None else steps_per_task(args.plastic_steps, tasks)
    for option, given, counts in [
        ("--steps", args.steps, steps["sb3"]),
        ("--plastic-steps", args.plastic_steps, steps["plastic"]),
    ]:
        if counts is None:
            parser.error(f"{option} {given}: give N or TASK=N for each of {', '.join(tasks)}, N ≥ 1")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if not Path(args.plastic).is_file():
        parser.error(f"{args.plastic} is missing: build it with `make build`")

    with tempfile.TemporaryDirectory() as scratch:
        runs = Path(args.runs or scratch).resolve()
        runs.mkdir(parents=True, exist_ok=True)
        results = {task: {"plastic": [], "sb3": []} for task in tasks}
        for task in tasks:
            for seed in range(args.seeds):
                # Alternate which side goes first, so neither always meets a warmer machine.
                sides = ["plastic", "sb3"] if seed % 2 == 0 else ["sb3", "plastic"]
                for side in sides:
                    if side == "plastic":
                        result = plastic_run(args.plastic, task, seed, steps["plastic"][task], runs)
                    else:
                        result = sb3_run(task, seed, steps["sb3"][task])
                    results[task][side].append(result)
                    print(
                        f"{task} seed {seed} {side}: {result['steps'] / result['wall_s']:,.0f} "
                        f"env-steps/s, return {last_return(result['curve'])}",
                        file=sys.stderr,
                        flush=True,
                    )
    report = {
        "command": shlex.join(["python", "scripts/sb3_side_by_side.py", *sys.argv[1:]]),
        "machine": f"{platform.node()}, {platform.processor() or platform.machine()}",
        "date": time.strftime("%Y-%m-%d"),
        "seeds": list(range(args.seeds)),
        "steps": steps,
        "results": results,
    }
    report["summary"] = summary(results)
    table = markdown([report])
    write(args.json, json.dumps(report, indent=1))
    write(args.markdown, table)
    print(table)


def write(path, text):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


if __name__ == "__main__":
    main()
