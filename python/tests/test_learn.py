"""Training from Python (`plastic.Trainer`): the CLI's runs bit for bit, environment objects,
callbacks, Ctrl-C and exceptions, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium
import numpy as np
import plastic
import pytest
from plastic.callbacks import BaseCallback, CheckpointCallback, EvalCallback, StopTrainingOnRewardThreshold

ROOT = Path(__file__).resolve().parents[2]
MAZE = ROOT / "configs" / "maze-small.toml"
# Two updates of 30 × 100 steps, each checkpointed.
MAZE_KEYS = {"log.checkpoint_every": 1, "log.eval_every": 1, "log.eval_episodes": 8}
MAZE_SETS = [arg for k, v in MAZE_KEYS.items() for arg in ("--set", f"{k}={v}")]
UPDATE = 3000


def checkpoint_files(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted((run / "checkpoints").rglob("*")) if p.is_file()}


def test_learn_equals_plastic_train_and_resume(plastic_bin, tmp_path):
    cli_run, py_run = tmp_path / "cli", tmp_path / "py"
    subprocess.run(
        [str(plastic_bin), "train", str(MAZE), *MAZE_SETS, "--total-steps", str(UPDATE), "--out", str(cli_run)],
        check=True,
        capture_output=True,
    )
    trainer = plastic.Trainer(config=MAZE, out=py_run, log={"checkpoint_every": 1, "eval_every": 1, "eval_episodes": 8})
    trainer.learn(UPDATE)
    assert checkpoint_files(py_run) == checkpoint_files(cli_run) != {}
    assert (py_run / "config.toml").read_bytes() == (cli_run / "config.toml").read_bytes()
    assert (py_run / "evaluations.csv").is_file()

    subprocess.run(
        [str(plastic_bin), "resume", str(cli_run), "--total-steps", str(2 * UPDATE)], check=True, capture_output=True
    )
    trainer.learn(UPDATE)
    assert trainer.num_timesteps == 2 * UPDATE
    assert checkpoint_files(py_run) == checkpoint_files(cli_run)
    ours, theirs = trainer.get_parameters(), plastic.load(cli_run).parameters()
    assert ours.keys() == theirs.keys() and all(np.array_equal(ours[k], theirs[k]) for k in ours)


def test_trainer_without_config_trains_the_starting_defaults_as_plastic_train_env(plastic_bin, tmp_path):
    env, steps = "bandit-dependent-easy:len=8", 2048  # one update of 16 × 128 steps
    cli_run, py_run = tmp_path / "cli", tmp_path / "py"
    subprocess.run(
        [str(plastic_bin), "train", "--env", env, "--total-steps", str(steps), "--out", str(cli_run)],
        check=True,
        capture_output=True,
    )
    plastic.Trainer(env, out=py_run).learn(steps)
    assert (py_run / "config.toml").read_bytes() == (cli_run / "config.toml").read_bytes()
    assert "[ppo]" in (py_run / "config.toml").read_text()
    assert checkpoint_files(py_run) == checkpoint_files(cli_run) != {}
    # A dict naming only `env` and `run` keys takes them too; naming another section, the
    # built-in defaults every section had before (A2C: no `[ppo]`).
    assert "[ppo]" in plastic.Trainer(env, {"env.num_envs": 8, "run": {"seed": 3}}).config
    assert "[ppo]" not in plastic.Trainer(env, {"optim.lr": 1e-3}).config
    assert "[ppo]" not in plastic.Trainer(env, log={"every": 5}).config


class DoubleReward(gymnasium.RewardWrapper):
    def reward(self, reward):
        return 2.0 * reward


def test_wrapped_gymnasium_object_trains_saves_and_evaluates_with_the_cli(plastic_bin, tmp_path):
    env = DoubleReward(gymnasium.make("CartPole-v1"))
    trainer = plastic.Trainer(
        env, {"env": {"num_envs": 4}, "a2c": {"rollout_len": 16}, "log": {"eval_episodes": 2}}, out=tmp_path / "run"
    )
    rewards = []
    trainer.learn(256, callback=lambda info: rewards.append(info["mean_return"]))
    assert trainer.run == tmp_path / "run"
    # A CartPole episode's reward is its length; doubled, it is even.
    assert any(r is not None for r in rewards)
    episodes = (trainer.run / "episodes.csv").read_text().splitlines()[1:]
    assert episodes and all(float(line.split(",")[0]) % 2 == 0 for line in episodes), episodes[:3]
    saved = trainer.save(tmp_path / "saved")
    report = subprocess.run(
        [str(plastic_bin), "eval", str(saved), "--episodes", "3", "--json"], check=True, capture_output=True, text=True
    )
    assert json.loads(report.stdout)["env"] == "gym:CartPole-v1"
    again = plastic.Trainer.load(saved, env=env)
    again.learn(128)
    assert again.num_timesteps == 256 + 128
    actions, _ = again.predict(np.zeros((1, 4), dtype=np.float32))
    assert actions.shape == (1,)


def test_callable_and_vector_env_objects(tmp_path):
    small = {"a2c.rollout_len": 8, "log.eval_episodes": 2}
    made = plastic.Trainer(lambda: gymnasium.make("CartPole-v1"), {**small, "env.num_envs": 2}, out=tmp_path / "f")
    made.learn(16)
    assert made.num_timesteps == 16
    vector = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make("CartPole-v1")] * 3)
    stepped = plastic.Trainer(vector, small, out=tmp_path / "v")
    assert "num_envs = 3" in stepped.config
    stepped.learn(24)
    assert stepped.num_timesteps == 24


CUSTOM_ENV = '''
import gymnasium
import numpy as np


class Corridor(gymnasium.Env):
    """Walk right to the end of a corridor; `fail_at` steps in, step() raises."""

    observation_space = gymnasium.spaces.Box(0.0, 1.0, (5,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def __init__(self, fail_at=None):
        self.fail_at, self.steps, self.pos = fail_at, 0, 0

    def _obs(self):
        obs = np.zeros(5, np.float32)
        obs[self.pos] = 1.0
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = 0
        return self._obs(), {}

    def step(self, action):
        self.steps += 1
        if self.fail_at is not None and self.steps > self.fail_at:
            raise ArithmeticError("the corridor collapsed")
        self.pos = min(4, max(0, self.pos + (1 if action == 1 else -1)))
        done = self.pos == 4
        return self._obs(), float(done), done, False, {}


gymnasium.register("Corridor-v0", entry_point=__name__ + ":Corridor", max_episode_steps=20)
'''


@pytest.fixture()
def corridor(tmp_path, monkeypatch):
    """The module `corridor_env` (a custom env class), importable here and by the CLI."""
    (tmp_path / "corridor_env.py").write_text(CUSTOM_ENV)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    import corridor_env

    return corridor_env


SMALL = {"env": {"num_envs": 4}, "a2c": {"rollout_len": 10}, "log": {"eval_episodes": 2, "checkpoint_every": 1}}


def test_custom_env_class_trains_and_the_cli_evaluates_it(plastic_bin, tmp_path, corridor):
    env = gymnasium.wrappers.TimeLimit(corridor.Corridor(), max_episode_steps=20)
    trainer = plastic.Trainer(env, SMALL, out=tmp_path / "run", env_id="gym:corridor_env:Corridor-v0")
    trainer.learn(200)
    report = subprocess.run(
        [str(plastic_bin), "eval", str(trainer.run), "--episodes", "3", "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "corridor_env:Corridor-v0" in report.stdout
    resumed = plastic.Trainer.load(trainer.run, env=env)
    resumed.learn(40)
    assert resumed.num_timesteps == 240


def test_exception_in_env_step_is_raised_and_the_run_resumes(tmp_path, corridor):
    broken = gymnasium.wrappers.TimeLimit(corridor.Corridor(fail_at=35), max_episode_steps=20)
    trainer = plastic.Trainer(broken, SMALL, out=tmp_path / "run", env_id="gym:corridor_env:Corridor-v0")
    with pytest.raises(ArithmeticError, match="the corridor collapsed") as raised:
        trainer.learn(400)
    assert any(entry.name == "step" for entry in raised.traceback)
    # Each of the 4 copies fails on its 36th step, in the 4th update of 4 × 10 steps.
    assert trainer.num_timesteps == 120
    fixed = gymnasium.wrappers.TimeLimit(corridor.Corridor(), max_episode_steps=20)
    plastic.Trainer.load(trainer.run, env=fixed).learn(40)
    assert plastic.load(trainer.run).env_steps == 160


BANDIT = {"env.num_envs": 4, "a2c.rollout_len": 5}


class Raises(BaseCallback):
    def _on_step(self):
        if self.n_calls == 2:
            raise LookupError("callback failed")
        return True


def test_exception_in_callback_saves_a_checkpoint_and_is_raised(tmp_path):
    trainer = plastic.Trainer("bandit-dependent-easy", BANDIT, out=tmp_path / "run")
    with pytest.raises(LookupError, match="callback failed"):
        trainer.learn(200, callback=Raises())
    assert trainer.num_timesteps == 40
    trainer.learn(20)
    assert trainer.num_timesteps == 60


def test_callbacks_stop_save_and_evaluate(tmp_path):
    calls = []

    class Count(BaseCallback):
        def _on_rollout_end(self):
            calls.append(("rollout_end", self.locals["updates"]))

        def _on_step(self):
            calls.append(("step", self.num_timesteps))
            return self.n_calls < 3

    trainer = plastic.Trainer("bandit-dependent-easy", BANDIT, out=tmp_path / "run")
    trainer.learn(10_000, callback=Count())
    assert calls == [
        ("rollout_end", 1),
        ("step", 20),
        ("rollout_end", 2),
        ("step", 40),
        ("rollout_end", 3),
        ("step", 60),
    ]
    assert trainer.num_timesteps == 60

    stop = StopTrainingOnRewardThreshold(reward_threshold=-1e9)
    evaluate = EvalCallback(
        eval_freq=2, n_eval_episodes=4, best_model_save_path=str(tmp_path / "best"), callback_on_new_best=stop
    )
    checkpoints = CheckpointCallback(save_freq=1, save_path=str(tmp_path / "kept"))
    other = plastic.Trainer("bandit-dependent-easy", BANDIT, out=tmp_path / "run2")
    other.learn(10_000, callback=[evaluate, checkpoints])
    assert other.num_timesteps == 40  # the first evaluation is a new best, over the threshold
    assert evaluate.evaluations and evaluate.best_mean_reward > -1e9
    assert plastic.load(tmp_path / "best").env_steps == 40
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["plastic_model_20_steps", "plastic_model_40_steps"]


SIGINT_SCRIPT = """
import sys, time, gymnasium, numpy as np, plastic

class Slow(gymnasium.Env):
    # Nearly all of an update's time is spent in `step`, where Ctrl-C then lands.
    observation_space = gymnasium.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        time.sleep(0.002)
        return np.zeros(2, np.float32), float(action), False, False, {}

# No periodic checkpoint and no evaluation: the only checkpoint is the one Ctrl-C saves.
quiet = {"log.checkpoint_every": 10**6, "log.eval_every": 10**6}
if sys.argv[2] == "native":
    trainer = plastic.Trainer("bandit-dependent-easy", {"env.num_envs": 8, **quiet}, out=sys.argv[1])
else:
    env = gymnasium.wrappers.TimeLimit(Slow(), max_episode_steps=10)
    settings = {"env.num_envs": 2, "a2c.rollout_len": 10, "core.hidden": 8, **quiet}
    trainer = plastic.Trainer(env, settings, out=sys.argv[1], env_id="gym:slow-v0")
try:
    trainer.learn(10_000_000)
except KeyboardInterrupt:
    print("KeyboardInterrupt at", trainer.num_timesteps, flush=True)
    raise
"""


@pytest.mark.parametrize("env", ["native", "python"])
def test_ctrl_c_saves_a_checkpoint_and_raises_keyboard_interrupt(tmp_path, env):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGINT_SCRIPT, str(run), env],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (run / "episodes.csv").is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err, err[-2000:]
    steps = int(out.split("KeyboardInterrupt at ")[1])
    assert steps > 0, "Ctrl-C saved no checkpoint"
    if env == "native":
        trainer = plastic.Trainer.load(run)
        trainer.learn(800)  # one update: 8 episodes of 100 pulls
        assert trainer.num_timesteps == steps + 800
    else:
        # Ctrl-C came during the environment's `step`; it is raised from learn(), after the
        # update it interrupted, not inside `step`.
        assert "in step" not in err, err[-2000:]


def test_bad_input_is_one_clear_exception(tmp_path):
    with pytest.raises(plastic.ConfigError, match="unknown key `optim.lrr`"):
        plastic.Trainer("maze", optim={"lrr": 1e-3})
    grids = gymnasium.wrappers.TimeLimit(_GridEnv(), max_episode_steps=5)
    trainer = plastic.Trainer(grids, out=tmp_path / "grids", env_id="gym:grids-v0")
    with pytest.raises(plastic.TrainingError, match="is a Box of rank 2"):
        trainer.learn(100)
    assert not (tmp_path / "grids").exists()


class _GridEnv(gymnasium.Env):
    """Observations of rank 2: neither a vector nor an image, so refused with the wrapper."""

    observation_space = gymnasium.spaces.Box(0, 255, (4, 4), np.uint8)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def test_example_script_runs(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "python" / "examples" / "train_bandit.py"),
            "--steps",
            "2000",
            "--out",
            str(tmp_path / "ex"),
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert "held-out mean reward" in out.stdout
    assert (tmp_path / "ex" / "seed0" / "config.toml").is_file()


SYS_PATH_SCRIPT = """
import sys
import plastic

before = list(sys.path)
trainer = plastic.Trainer("gym:CartPole-v1", {"env.num_envs": 2, "a2c.rollout_len": 8, "log.eval_episodes": 1}, out=sys.argv[1])
trainer.learn(16)
print(sys.path == before, before, sys.path)
"""


def test_training_on_a_gymnasium_env_leaves_the_programs_sys_path_as_it_was(tmp_path):
    # The CLI's embedded interpreter gets the virtual environments and the current folder put
    # on its path; a Python program's own path is the program's, also from another folder.
    out = subprocess.run(
        [sys.executable, "-c", SYS_PATH_SCRIPT, str(tmp_path / "run")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("True"), out


def test_two_armed_bandit_example_pays_and_trains_from_its_folder(plastic_bin, tmp_path, monkeypatch):
    examples = ROOT / "python" / "examples"
    monkeypatch.syspath_prepend(str(examples))
    import two_armed_bandit

    env = gymnasium.make("TwoArmedBandit-v0")
    totals = {"always-0": [], "oracle": []}
    for seed in range(400):
        for policy, total in totals.items():
            env.reset(seed=seed)
            arm = 0 if policy == "always-0" else env.unwrapped.good_arm
            rewards = [env.step(arm)[1] for _ in range(two_armed_bandit.PULLS)]
            total.append(sum(rewards))
    # Random's 10 and the oracle's 18 per episode of 20 pulls, within sampling error.
    assert abs(np.mean(totals["always-0"]) - 10) < 1.0 and abs(np.mean(totals["oracle"]) - 18) < 0.5
    run = tmp_path / "run"
    subprocess.run(
        [str(plastic_bin), "train", "--env", "gym:two_armed_bandit:TwoArmedBandit-v0", "--total-steps", "2048"]
        + ["--set", "log.eval_episodes=4", "--out", str(run)],
        check=True,
        capture_output=True,
        cwd=examples,
    )
    assert str(examples) in (run / "config.toml").read_text()
