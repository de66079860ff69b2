"""Trained agents from Python: sb3-contrib's recurrent predict, the state and its traces, and
exactly plastic eval's numbers."""

import os
import subprocess
from pathlib import Path

import gym_test_envs  # noqa: F401 (registers the environments below with gymnasium)
import gymnasium
import numpy as np
import plastic
import pytest
import torch


def _python_eval(policy, episodes, seed, deterministic, env=None):
    """plastic eval's agent rollout written as a plain Python loop over gymnasium.make_vec
    (the maze unless `env` is given): `episodes` environments (plastic eval steps
    min(episodes, 256) together), the episodes collected in the order they end, rewards
    summed in float64 from float32 (as the bridge hands them over)."""
    if env is None:
        env = gymnasium.make_vec("plastic/Maze-v0", num_envs=episodes, size=9, len=100)
    policy.seed(seed)
    obs, _ = env.reset(seed=seed)
    state, starts = None, np.ones(episodes, dtype=bool)
    totals, returns = [0.0] * episodes, []
    while len(returns) < episodes:
        actions, state = policy.predict(obs, state, starts, deterministic=deterministic)
        obs, rewards, terminated, truncated, _ = env.step(actions)
        starts = terminated | truncated
        for row in range(episodes):
            totals[row] += float(np.float32(rewards[row]))
            if starts[row]:
                if len(returns) < episodes:
                    returns.append(totals[row])
                totals[row] = 0.0
    mean = sum(returns) / len(returns)
    var = sum((r - mean) * (r - mean) for r in returns) / (len(returns) - 1)
    return mean, 1.96 * (var / len(returns)) ** 0.5


@pytest.mark.parametrize("greedy", [True, False])
def test_a_policy_driven_from_python_gets_plastic_evals_returns(cli, maze_run, greedy):
    episodes, seed = 40, 3
    args = ["eval", str(maze_run), "--episodes", str(episodes), "--seed", str(seed)]
    report = cli(*args, *(["--greedy"] if greedy else []))
    policy = plastic.load(maze_run)
    mean, ci95 = _python_eval(policy, episodes, seed, deterministic=greedy)
    agent = report["policies"][0]
    assert (mean, ci95) == (agent["reward"]["mean"], agent["reward"]["ci95"])
    # The same report from Python, every number.
    evaluation = plastic.evaluate(policy, episodes=episodes, seed=seed, deterministic=greedy)
    assert evaluation == report
    # And the agent through plastic.rollout, batch and seed as eval's.
    policy.seed(seed)
    rolled = plastic.rollout(policy.env_id, policy, episodes, seed, batch=episodes, deterministic=greedy)
    assert rolled["policies"][0]["reward"] == agent["reward"]


@pytest.fixture(scope="module")
def pendulum_run(plastic_bin, tmp_path_factory) -> Path:
    """configs/gym-pendulum.toml shrunk to 2 PPO updates of 8 × 16 steps (a second or two)."""
    run = tmp_path_factory.mktemp("runs") / "pendulum"
    settings = ["run.total_steps=256", "a2c.rollout_len=16", "core.hidden=8", "ppo.n_epochs=2"]
    sets = [arg for setting in settings for arg in ("--set", setting)]
    root = Path(__file__).resolve().parents[2]
    train = [str(plastic_bin), "train", str(root / "configs" / "gym-pendulum.toml"), *sets, "--out", str(run)]
    subprocess.run(train, check=True, capture_output=True)
    return run


@pytest.mark.parametrize("greedy", [True, False])
def test_a_pendulum_policy_predicts_box_actions_and_gets_plastic_evals_returns(cli, pendulum_run, greedy):
    episodes, seed = 6, 5
    args = ["eval", str(pendulum_run), "--episodes", str(episodes), "--seed", str(seed)]
    report = cli(*args, *(["--greedy"] if greedy else []))
    # The bridge's vector env: gymnasium's synchronous one, reset with eval's seed. Every
    # episode lasts 200 steps, so all end together, in row order.
    env = gymnasium.make_vec("Pendulum-v1", num_envs=episodes, vectorization_mode="sync")
    policy = plastic.load(pendulum_run, env=env)
    assert policy.env_id == "gym:Pendulum-v1"
    assert policy.action_space == env.single_action_space
    assert policy.observation_space == env.single_observation_space
    one, _ = policy.predict(np.zeros(3, np.float32), deterministic=greedy)
    assert one.shape == (1,) and one.dtype == np.float32 and -2.0 <= one[0] <= 2.0
    mean, ci95 = _python_eval(policy, episodes, seed, deterministic=greedy, env=env)
    agent = report["policies"][0]
    assert (mean, ci95) == (agent["reward"]["mean"], agent["reward"]["ci95"])


def test_a_gymnasium_agent_loads_without_its_environment_through_the_bridge(pendulum_run):
    # The package steps Gymnasium through the CLI's bridge, so the run's id is enough; the
    # observation space is then read unbounded.
    alone = plastic.load(pendulum_run)
    given = plastic.load(pendulum_run, env=gymnasium.make("Pendulum-v1"))
    assert alone.action_space == given.action_space
    assert alone.observation_space.shape == given.observation_space.shape == (3,)
    obs = np.array([[0.5, -0.5, 1.0]], np.float32)
    a, _ = alone.predict(obs, deterministic=True)
    b, _ = given.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a, b)


def test_predict_follows_sb3_contrib_recurrent_ppo(maze_run):
    policy = plastic.load(maze_run, seed=1)
    env = plastic.make("maze", size=9, len=100)
    assert policy.observation_space == env.observation_space
    assert policy.action_space == gymnasium.spaces.Discrete(4)
    obs, _ = env.reset(seed=0)
    action, state = policy.predict(obs)
    assert action.shape == () and action.dtype == np.int64 and 0 <= action < 4
    assert state.batch_size == 1
    obs, *_ = env.step(action)
    action, state = policy.predict(obs, state, episode_start=np.array([False]))
    batch = np.stack([obs] * 5)
    actions, _ = policy.predict(batch, deterministic=True)
    assert actions.shape == (5,) and (actions == actions[0]).all()
    # Lists and float64 are taken too (as sb3 takes them).
    same, _ = policy.predict(batch.astype(np.float64).tolist(), deterministic=True)
    np.testing.assert_array_equal(same, actions)


def test_the_state_shows_hidden_state_traces_and_modulator(maze_run):
    policy = plastic.load(maze_run)
    env = plastic.make_vec("maze", 3, size=9, len=100)
    obs, _ = env.reset(seed=0)
    state = policy.initial_state(3)
    assert np.all(state.hebb == 0) and state.modulator is None
    for _ in range(20):
        actions, new = policy.predict(obs, state)
        obs, *_ = env.step(actions)
        old_hebb, state = state.hebb, new
    h = policy.hidden_size
    assert state.hidden.shape == (3, h)
    assert state.hebb.shape == (3, h, h) and np.abs(state.hebb).max() > 0
    assert state.modulator.shape == (3, 1)
    assert state.cell is None and state.elig is None  # a plastic RNN, simple modulation
    assert not np.array_equal(old_hebb, state.hebb)  # a step makes a new state
    assert state.device == "cpu"
    names = policy.parameters()
    assert names["ac.core.alpha"].shape == (h, h)


def test_episode_start_resets_exactly_one_row(maze_run):
    policy = plastic.load(maze_run)
    env = plastic.make_vec("maze", 4, size=9, len=100)
    obs, _ = env.reset(seed=5)
    state = None
    for _ in range(15):
        actions, state = policy.predict(obs, state, deterministic=True)
        obs, *_ = env.step(actions)
    starts = np.array([False, True, False, False])
    _, reset = policy.predict(obs, state, starts, deterministic=True)
    _, kept = policy.predict(obs, state, deterministic=True)
    _, fresh = policy.predict(obs, deterministic=True)  # every row afresh
    for name in ["hidden", "hebb", "modulator"]:
        got, cont, new = getattr(reset, name), getattr(kept, name), getattr(fresh, name)
        np.testing.assert_array_equal(got[[0, 2, 3]], cont[[0, 2, 3]], err_msg=name)
        np.testing.assert_array_equal(got[1], new[1], err_msg=name)
        assert not np.array_equal(got[1], cont[1]), name
    # The state handed in is not changed.
    np.testing.assert_array_equal(state.reset_rows(starts).hebb[1], 0)
    assert np.abs(state.hebb[1]).max() > 0


def test_sampling_is_seeded(maze_run):
    obs = np.tile(np.eye(16, dtype=np.float32)[9], (64, 1))
    a = plastic.load(maze_run, seed=7).predict(obs)[0]
    b = plastic.load(maze_run, seed=7).predict(obs)[0]
    c = plastic.load(maze_run, seed=8).predict(obs)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_a_checkpoint_folder_loads_as_its_run_does(maze_run):
    checkpoint = max((maze_run / "checkpoints").iterdir())
    a = plastic.load(maze_run)
    b = plastic.load(checkpoint)
    assert a.checkpoint == b.checkpoint == str(checkpoint)
    assert a.env_id == "maze:size=9,len=100,reward=10,wall_penalty=0"
    assert a.env_steps == 30000


def test_an_agent_acts_with_its_runs_threads(maze_run, copy_of):
    assert plastic.load(maze_run).threads == 1  # configs/maze-small.toml: run.threads = 1
    run = copy_of(maze_run)
    for config in run.glob("checkpoints/*/config.toml"):
        text = config.read_text()
        assert "\nthreads = 1\n" in text
        config.write_text(text.replace("\nthreads = 1\n", "\nthreads = 3\n"))
    assert plastic.load(run).threads == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_a_policy_on_cuda_acts_as_on_the_cpu(maze_run):
    cpu, gpu = plastic.load(maze_run), plastic.load(maze_run, device="cuda")
    assert gpu.device == "cuda:0"
    obs = np.random.default_rng(0).random((8, 16), dtype=np.float32)
    a, s = cpu.predict(obs, deterministic=True)
    b, t = gpu.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a, b)
    assert t.device == "cuda:0"
    np.testing.assert_allclose(s.hebb, t.hebb, atol=1e-5)


def test_bad_input_gets_clear_python_exceptions(maze_run, tmp_path, copy_of):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plastic.load(tmp_path / "nowhere")
    with pytest.raises(plastic.CheckpointError, match="not a run folder"):
        plastic.load(tmp_path)
    (tmp_path / "config.toml").write_text((maze_run / "config.toml").read_text())
    with pytest.raises(plastic.CheckpointError, match="no checkpoint yet"):
        plastic.load(tmp_path)
    with pytest.raises(ValueError, match="unknown device"):
        plastic.load(maze_run, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA device"):
            plastic.load(maze_run, device="cuda")

    policy = plastic.load(maze_run)
    with pytest.raises(ValueError, match=r"expected \(16,\)"):
        policy.predict(np.zeros(15, dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(batch, 16\)"):
        policy.predict(np.zeros((2, 3, 16), dtype=np.float32))
    with pytest.raises(TypeError, match="real numbers"):
        policy.predict(np.array(["a"] * 16))
    with pytest.raises(TypeError, match="real numbers"):
        policy.predict(np.zeros(16, dtype=np.complex64))
    with pytest.raises(ValueError, match="finite"):
        policy.predict(np.full(16, np.nan, dtype=np.float32))
    _, state = policy.predict(np.zeros((2, 16), dtype=np.float32))
    with pytest.raises(ValueError, match="2 rows"):
        policy.predict(np.zeros((3, 16), dtype=np.float32), state)
    with pytest.raises(ValueError, match="another policy"):
        plastic.load(maze_run).predict(np.zeros((2, 16), dtype=np.float32), state)
    with pytest.raises(TypeError, match="State"):
        policy.predict(np.zeros(16, dtype=np.float32), state=(np.zeros(3), np.zeros(3)))
    with pytest.raises(ValueError, match="episode_start"):
        policy.predict(np.zeros((2, 16), dtype=np.float32), state, np.array([True]))

    # A checkpoint written by another version of plastic: a core kind this one does not know,
    # then weights that do not fit the network the config describes.
    run = copy_of(maze_run)
    checkpoint = max((run / "checkpoints").iterdir())
    config = checkpoint / "config.toml"
    text = config.read_text()
    config.write_text(text.replace('kind = "plastic-rnn"', 'kind = "plastic-gru"'))
    with pytest.raises(plastic.CheckpointError, match="plastic-gru"):
        plastic.load(checkpoint)
    config.write_text(text.replace("hidden = 100", "hidden = 64"))
    with pytest.raises(plastic.CheckpointError, match="does not fit"):
        plastic.load(checkpoint)
    (checkpoint / "state.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(plastic.CheckpointError, match="damaged"):
        plastic.load(checkpoint)


def test_importing_with_another_torch_is_a_clear_import_error(tmp_path):
    """A torch other than the pinned one is refused at import, before any library loads."""
    fake = tmp_path / "torch-9.9.0.dist-info"
    fake.mkdir()
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 9.9.0\n")
    code = "import sys; sys.path.insert(0, sys.argv[1]); import plastic"
    out = subprocess.run(
        [__import__("sys").executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert out.returncode != 0
    assert "ImportError: plastic was built against torch 2.11.0" in out.stderr
    assert "torch 9.9.0" in out.stderr


def test_the_pinned_torch_is_the_one_setup_installs_and_the_module_links():
    from pathlib import Path

    setup = (Path(__file__).resolve().parents[2] / "scripts" / "setup.sh").read_text()
    assert f"TORCH_VERSION={plastic.TORCH_VERSION}\n" in setup
    assert plastic._native.TORCH_BUILD_VERSION.split("+")[0] == plastic.TORCH_VERSION
    assert torch.__version__.split("+")[0] == plastic.TORCH_VERSION


def test_the_readme_example_runs(maze_run):
    """README.md's Python example, on the test's trained agent."""
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("\n## Python\n", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert '"runs/maze-demo"' in block
    code = block.replace('"runs/maze-demo"', repr(str(maze_run)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("reward per episode: ")
    assert lines[1].startswith("mean |Hebb| ") and "strongest plastic connection" in lines[1]
    assert 0 < float(lines[2]) < 100


def test_an_stpn_state_shows_its_fast_weights_and_resets_them(plastic_bin, tmp_path):
    run = tmp_path / "stpn"
    config = str(Path(__file__).resolve().parents[2] / "configs" / "maze-small-stpn.toml")
    args = [str(plastic_bin), "train", config, "--set", "run.total_steps=3000", "--out", str(run)]
    subprocess.run(args, check=True, capture_output=True)
    policy = plastic.load(run)
    env = plastic.make_vec("maze", 2, size=9, len=100)
    obs, _ = env.reset(seed=0)
    state = policy.initial_state(2)
    h, inputs = policy.hidden_size, obs.shape[1]
    assert state.fast.shape == (2, h, inputs + h) and np.all(state.fast == 0)
    assert state.hebb is None and state.elig is None and "fast=" in repr(state)
    for _ in range(5):
        actions, state = policy.predict(obs, state)
        obs, *_ = env.step(actions)
    assert np.abs(state.fast).max() > 0
    _, reset = policy.predict(obs, state, np.array([True, False]))
    _, fresh = policy.predict(obs, deterministic=True)
    np.testing.assert_array_equal(reset.fast[0], fresh.fast[0])
    names = policy.parameters()
    assert names["ac.core.stp_lambda"].shape == (h, inputs + h)
    assert names["ac.core.stp_gamma"].shape == (h, inputs + h)


TEST_ENVS = Path(__file__).resolve().parent


def _train_on_test_env(plastic_bin, run: Path, env_id: str, config: str, settings: list[str]) -> Path:
    """`plastic train` on one of gym_test_envs' environments (this folder on PYTHONPATH; the
    run records it, so eval and plastic.load find the module again without it)."""
    root = Path(__file__).resolve().parents[2]
    sets = [arg for setting in [f"env.id={env_id}", *settings] for arg in ("--set", setting)]
    train = [str(plastic_bin), "train", str(root / "configs" / config), *sets, "--out", str(run)]
    subprocess.run(train, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(TEST_ENVS)})
    return run


@pytest.fixture(scope="module", params=["hwc", "chw"])
def lamp_run(request, plastic_bin, tmp_path_factory) -> tuple[Path, bool]:
    """A plastic RNN behind the small image encoder, 2 PPO updates of 4 × 8 steps on Lamp-v0's
    6 × 6 × 3 frames, in either layout."""
    channels_first = request.param == "chw"
    run = tmp_path_factory.mktemp("runs") / f"lamp-{request.param}"
    env_id = f"gym:gym_test_envs:plastic_test/Lamp-v0?channels_first={channels_first}"
    settings = ["env.num_envs=4", "a2c.rollout_len=8", "run.total_steps=64", "core.hidden=8", "ppo.n_epochs=1"]
    return _train_on_test_env(plastic_bin, run, env_id, "gym-minigrid-memory.toml", settings), channels_first


class _Transposing:
    """A policy seen through frames with the channels at the other end of the axes."""

    def __init__(self, policy, channels_first):
        self.policy, self.channels_first = policy, channels_first

    def seed(self, seed):
        self.policy.seed(seed)

    def predict(self, obs, state, starts, deterministic):
        frames = np.moveaxis(obs, 1, -1) if self.channels_first else np.moveaxis(obs, -1, 1)
        return self.policy.predict(frames, state, starts, deterministic=deterministic)


@pytest.mark.parametrize("greedy", [True, False])
def test_an_image_policy_predicts_on_hwc_and_chw_frames_as_plastic_eval_acts(cli, lamp_run, greedy):
    run, channels_first = lamp_run
    episodes, seed = 6, 5
    args = ["eval", str(run), "--episodes", str(episodes), "--seed", str(seed)]
    report = cli(*args, *(["--greedy"] if greedy else []))
    agent = report["policies"][0]
    env = gymnasium.make_vec(
        "plastic_test/Lamp-v0", num_envs=episodes, vectorization_mode="sync", channels_first=channels_first
    )
    policy = plastic.load(run)
    assert policy.observation_space == env.single_observation_space
    # Every episode lasts 8 steps, so all end together, in row order.
    for frames_of in (policy, _Transposing(policy, channels_first)):
        mean, ci95 = _python_eval(frames_of, episodes, seed, deterministic=greedy, env=env)
        assert (mean, ci95) == (agent["reward"]["mean"], agent["reward"]["ci95"])
    # Loaded with the environment instead of the run's id: the same network, the same actions.
    given = plastic.load(run, env=env)
    frames, _ = env.reset(seed=seed)
    np.testing.assert_array_equal(
        given.predict(frames, deterministic=True)[0], policy.predict(frames, deterministic=True)[0]
    )
    one, _ = policy.predict(frames[0], deterministic=greedy)
    assert one.shape == () and one.dtype == np.int64
    for wrong in (frames[0].reshape(-1), frames[:, :, :5], frames[None]):
        with pytest.raises(ValueError, match=r"this agent reads .* frames of shape"):
            policy.predict(wrong)


@pytest.fixture(scope="module")
def dial_run(plastic_bin, tmp_path_factory) -> Path:
    """A plastic RNN, 2 A2C updates of 4 × 8 steps on ShiftedDial-v0, whose actions are
    Discrete(3, start=-1)."""
    run = tmp_path_factory.mktemp("runs") / "dial"
    settings = ["env.num_envs=4", "a2c.rollout_len=8", "run.total_steps=64", "core.hidden=8"]
    return _train_on_test_env(
        plastic_bin, run, "gym:gym_test_envs:plastic_test/ShiftedDial-v0", "gym-cartpole.toml", settings
    )


class _Recording:
    """A policy whose every action is kept in `taken`."""

    def __init__(self, policy, taken):
        self.policy, self.taken = policy, taken

    def seed(self, seed):
        self.policy.seed(seed)

    def predict(self, obs, state, starts, deterministic):
        actions, state = self.policy.predict(obs, state, starts, deterministic=deterministic)
        self.taken.append(actions)
        return actions, state


@pytest.mark.parametrize("greedy", [True, False])
def test_a_discrete_space_with_a_start_gets_its_own_values_as_plastic_eval_steps_it(cli, dial_run, greedy):
    episodes, seed = 6, 5
    args = ["eval", str(dial_run), "--episodes", str(episodes), "--seed", str(seed)]
    agent = cli(*args, *(["--greedy"] if greedy else []))["policies"][0]
    # Every episode lasts 8 steps, so all end together, in row order. ShiftedDial's step refuses an
    # action outside {-1, 0, 1}, and pays for the one equal to its target, so 0-based indices
    # would either fail or (almost surely) earn other returns than eval's.
    env = gymnasium.make_vec("plastic_test/ShiftedDial-v0", num_envs=episodes, vectorization_mode="sync")
    space = env.single_action_space
    assert space == gymnasium.spaces.Discrete(3, start=-1)
    for policy in (plastic.load(dial_run), plastic.load(dial_run, env=env)):
        assert policy.action_space == space
        taken = []
        mean, ci95 = _python_eval(_Recording(policy, taken), episodes, seed, deterministic=greedy, env=env)
        assert (mean, ci95) == (agent["reward"]["mean"], agent["reward"]["ci95"])
        actions = np.concatenate(taken)
        assert actions.dtype == np.int64 and len(actions) == 8 * episodes
        assert all(space.contains(a) for a in actions)
        one, _ = policy.predict(np.array([1, 0, 0], np.float32), deterministic=greedy)
        assert one.shape == () and space.contains(one)
