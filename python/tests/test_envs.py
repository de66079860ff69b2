"""The environments from Python: Gymnasium's checker, the vector API, and the same numbers as
the CLI."""

import warnings

import gymnasium
import numpy as np
import plastic
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

FAMILIES = [f["name"] for f in plastic.families()]


def test_every_family_is_registered_with_gymnasium():
    assert {"maze", "tmaze", "bandit-dependent-easy"} <= set(FAMILIES)
    for family in plastic.families():
        assert family["gym_id"] in gymnasium.registry, family
    assert plastic.gym_id("maze") == "plastic/Maze-v0"
    assert plastic.gym_id("tmaze") == "plastic/TMaze-v0"
    assert plastic.gym_id("bandit-dependent-easy") == "plastic/Bandit-dependent-easy-v0"


@pytest.mark.parametrize("family", FAMILIES)
def test_gymnasium_env_checker_passes(family):
    kwargs = {"render_mode": "rgb_array"} if plastic.environment(family).has_grid else {}
    env = gymnasium.make(plastic.gym_id(family), **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a warning
        check_env(env.unwrapped)
    with pytest.warns(UserWarning, match="different from the unwrapped"):
        check_env(env)  # the registered env as users get it: only that warning
    low, high = env.observation_space.low, env.observation_space.high
    assert np.isfinite(low).all() and np.isfinite(high).all()


def test_gymnasium_kwargs_are_the_ids_parameters():
    env = gymnasium.make("plastic/Maze-v0", size=9, len=50)
    assert env.unwrapped.env_id == "maze:size=9,len=50,reward=10,wall_penalty=0"
    env = gymnasium.make("plastic/Bandit-independent-v0", arms=5)
    assert env.action_space == gymnasium.spaces.Discrete(5)
    with pytest.raises(plastic.EnvError, match="sise"):
        gymnasium.make("plastic/Maze-v0", sise=9)
    with pytest.raises(plastic.EnvError, match="odd"):
        gymnasium.make("plastic/Maze-v0", size=8)


def test_make_vec_of_a_plastic_id_is_the_native_vector_env():
    env = gymnasium.make_vec("plastic/Maze-v0", num_envs=3, size=9)
    assert isinstance(env, plastic.PlasticVectorEnv)
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert env.num_envs == 3 and env.env_id.startswith("maze:size=9")


def test_the_vector_env_follows_gymnasium_same_step_autoreset():
    n, length = 5, 7
    env = plastic.make_vec("maze", n, size=9, len=length)
    assert isinstance(env, gymnasium.vector.VectorEnv)
    assert env.single_observation_space.shape == (16,)
    assert env.action_space == gymnasium.spaces.MultiDiscrete([4] * n)
    obs, info = env.reset(seed=11)
    assert obs.shape == (n, 16) and obs.dtype == np.float32 and info == {}
    # Each row is the single environment seeded the library's way: row i of a batch seeded
    # with S is stream (S, i), which a batch of one shows in row 0 only for i = 0.
    single = plastic.make("maze", size=9, len=length)
    first, _ = single.reset(seed=11)
    np.testing.assert_array_equal(first, obs[0])
    rng = np.random.default_rng(0)
    for t in range(1, 2 * length + 1):
        actions = env.action_space.sample()
        obs, rewards, terminated, truncated, infos = env.step(actions)
        s_obs, s_reward, _, s_trunc, _ = single.step(actions[0])
        assert rewards.dtype == np.float32 and terminated.dtype == np.bool_
        assert rewards[0] == s_reward
        ended = t % length == 0
        assert truncated.tolist() == [ended] * n and not terminated.any()
        if ended:
            assert infos["_final_obs"].all() and infos["_final_info"].all()
            for row in range(n):
                assert infos["final_obs"][row].shape == (16,)
            np.testing.assert_array_equal(infos["final_obs"][0], s_obs)
            # The row has started its next episode: time is 0, no reward, no previous action.
            assert (obs[:, 10] == 0).all() and (obs[:, 12:] == 0).all()
            assert s_trunc
            s_obs, _ = single.reset()
        else:
            assert "final_obs" not in infos
        np.testing.assert_array_equal(obs[0], s_obs)
    del rng


def test_copy_false_hands_out_read_only_views_without_copies():
    env = plastic.make_vec("maze", 4, copy=False)
    obs, _ = env.reset(seed=0)
    obs2, rewards, *_ = env.step(np.zeros(4, dtype=np.int64))
    assert np.shares_memory(obs, obs2)
    obs3, rewards3, *_ = env.step(np.ones(4, dtype=np.int64))
    assert np.shares_memory(rewards, rewards3)
    with pytest.raises(ValueError):
        obs3[0, 0] = 5.0
    # With copy=True (the default, as Gymnasium's) each step's arrays are the caller's.
    env = plastic.make_vec("maze", 4)
    a, _ = env.reset(seed=0)
    b, *_ = env.step([0, 0, 0, 0])
    assert not np.shares_memory(a, b)


def test_seed_of_make_vec_seeds_the_first_reset():
    a, _ = plastic.make_vec("maze", 3, seed=42).reset()
    b, _ = plastic.make_vec("maze", 3).reset(seed=42)
    np.testing.assert_array_equal(a, b)


def _python_random_rollout(env_id, episodes, seed, batch):
    """plastic rollout's loop in Python: the library's random policy (its streams) acting in
    the vector env, episodes collected in the order they end (by step, then row)."""
    env = plastic.make_vec(env_id, batch)
    policy = plastic.reference_policy(env_id, "random", batch, seed=seed)
    obs, _ = env.reset(seed=seed)
    totals = [0.0] * batch
    returns = []
    while len(returns) < episodes:
        obs, rewards, terminated, truncated, _ = env.step(policy.act(obs))
        done = terminated | truncated
        for row in range(batch):
            totals[row] += float(rewards[row])
            if done[row]:
                if len(returns) < episodes:
                    returns.append(totals[row])
                totals[row] = 0.0
        if done.any():
            policy.episodes_ended(done)
    return returns


@pytest.mark.parametrize("env_id", ["maze", "maze:size=9,len=30", "tmaze", "bandit-dependent-hard"])
def test_a_random_policy_in_python_gets_the_clis_numbers(cli, env_id):
    episodes, seed = 300, 7
    returns = _python_random_rollout(env_id, episodes, seed, batch=256)
    report = cli("rollout", env_id, "--policy", "random", "--seed", str(seed), "--episodes", str(episodes))
    mean = sum(returns) / len(returns)
    row = report["policies"][0]
    assert mean == row["reward"]["mean"]
    assert plastic._native.estimate(returns) == (row["reward"]["mean"], row["reward"]["ci95"])
    assert plastic.rollout(env_id, "random", episodes=episodes, seed=seed) == report


@pytest.mark.parametrize(
    "env_id, policy",
    [
        ("maze", "oracle"),
        ("bandit-dependent-easy", "bayes"),
        ("bandit-independent:arms=3", "thompson"),
        ("tmaze", "win-stay"),
        ("bandit-restless", "ucb1"),
    ],
)
def test_reference_policies_from_python_match_the_cli(cli, env_id, policy):
    report = cli("rollout", env_id, "--policy", policy, "--seed", "3", "--episodes", "500", "--batch", "64")
    assert plastic.rollout(env_id, policy, episodes=500, seed=3, batch=64) == report


def test_reference_hooks_are_callable_from_python():
    maze = plastic.environment("maze:size=9,len=100")
    assert maze.policy_names() == ["random", "oracle"]
    assert maze.oracle_returns(4, 0).shape == (4,)
    assert maze.bayes_optimal_regret() is None
    easy = plastic.environment("bandit-dependent-easy")
    assert "bayes" in easy.reference_policies()
    assert easy.bayes_optimal_regret() > 0
    thompson = plastic.reference_policy("bandit-dependent-easy", "thompson", 8, seed=1)
    env = plastic.make_vec("bandit-dependent-easy", 8)
    obs, _ = env.reset(seed=1)
    actions = thompson.act(obs)
    assert actions.shape == (8,) and set(actions.tolist()) <= {0, 1}
    _, _, _, _, infos = env.step(actions)
    assert infos["regret"].shape == (8,) and infos["_regret"].all()


def test_a_python_policy_is_judged_as_the_cli_judges_one(cli):
    """Any object with sb3's predict runs through the library's rollout: here the library's
    own random policy behind that contract gives plastic rollout's numbers."""
    inner = plastic.reference_policy("maze", "random", 256, seed=5)
    report = cli("rollout", "maze", "--seed", "5", "--episodes", "256")
    got = plastic.rollout("maze", inner, episodes=256, seed=5)
    assert got["policies"][0]["reward"] == report["policies"][0]["reward"]
    fresh = plastic.reference_policy("maze", "random", 256, seed=5)
    evaluation = plastic.evaluate(fresh, env_id="maze", episodes=256, seed=5)
    assert evaluation["policies"][0]["reward"]["mean"] == report["policies"][0]["reward"]["mean"]
    assert evaluation["policies"][1]["policy"] == "random"
    assert evaluation.keys() == report.keys()
    assert all(row.keys() == report["policies"][0].keys() for row in evaluation["policies"])
    assert evaluation["percent_of_oracle"] > 0


def test_errors_in_a_python_policy_reach_the_caller():
    class Broken:
        def predict(self, obs, state=None, episode_start=None, deterministic=False):
            raise RuntimeError("my policy failed")

    with pytest.raises(RuntimeError, match="my policy failed"):
        plastic.rollout("maze", Broken(), episodes=3)
    with pytest.raises(plastic.EnvError, match="out of range"):
        plastic.rollout("maze", lambda obs: np.full(len(obs), 9), episodes=3)


def test_the_maze_is_drawn():
    env = plastic.make("maze", size=9, render_mode="rgb_array")
    env.reset(seed=2)
    frame = env.render()
    assert frame.shape == (9 * 24, 9 * 24, 3) and frame.dtype == np.uint8
    # Border walls grey, some cell green (the reward), some pixels red (the agent).
    assert tuple(frame[2, 2]) == (60, 60, 60)
    assert ((frame == [40, 200, 80]).all(axis=-1)).sum() > 100
    assert ((frame == [215, 40, 40]).all(axis=-1)).sum() > 50
    vec = plastic.make_vec("maze", 2, size=9, render_mode="rgb_array")
    vec.reset(seed=0)
    assert len(vec.render()) == 2
    with pytest.raises(ValueError, match="cannot be drawn"):
        plastic.make("tmaze", render_mode="rgb_array")
    with pytest.raises(ValueError, match="rgb_array"):
        plastic.make("maze", render_mode="human")


def test_bad_input_gets_clear_python_exceptions():
    with pytest.raises(plastic.EnvError, match="unknown environment `mase`.*maze"):
        plastic.make_vec("mase", 2)
    with pytest.raises(plastic.EnvError, match="no parameter `colour`"):
        plastic.make_vec("maze:colour=red", 2)
    with pytest.raises(plastic.EnvError, match="Gymnasium"):
        plastic.make_vec("gym:CartPole-v1", 2)
    with pytest.raises(ValueError, match="num_envs"):
        plastic.make_vec("maze", 0)
    with pytest.raises(TypeError):
        plastic.make_vec(3, 2)
    env = plastic.make_vec("maze", 2)
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step([0, 0])
    env.reset(seed=0)
    with pytest.raises(plastic.EnvError, match="out of range"):
        env.step([0, 4])
    with pytest.raises(plastic.EnvError, match="out of range"):
        env.step([0, -1])
    with pytest.raises(plastic.EnvError, match="one action per environment"):
        env.step([0, 1, 2])
    with pytest.raises(TypeError, match="integers"):
        env.step(np.array([0.5, 1.0]))
    with pytest.raises(TypeError, match="one-dimensional"):
        env.step(np.zeros((2, 1), dtype=np.int64))
    with pytest.raises(TypeError, match="one integer seed"):
        env.reset(seed=[1, 2])
    with pytest.raises(ValueError):
        env.reset(seed=-1)
    single = plastic.make("maze")
    single.reset(seed=0)
    with pytest.raises(ValueError, match="action space"):
        single.step(4)


def test_gymnasiums_own_vectorisation_runs_the_single_env():
    env = gymnasium.make_vec(
        "plastic/Maze-v0",
        num_envs=3,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        size=9,
        len=5,
    )
    assert isinstance(env, gymnasium.vector.SyncVectorEnv)
    obs, _ = env.reset(seed=0)
    for t in range(1, 11):
        obs, _, _, truncated, infos = env.step(env.action_space.sample())
        assert truncated.all() == (t % 5 == 0)
        if t % 5 == 0:
            assert infos["_final_obs"].all() and (obs[:, 10] == 0).all()
    # Gymnasium's wrappers take the native vector env too.
    stats = gymnasium.wrappers.vector.RecordEpisodeStatistics(plastic.make_vec("maze", 4, len=5))
    stats.reset(seed=0)
    for _ in range(5):
        *_, infos = stats.step(stats.action_space.sample())
    assert infos["episode"]["l"].tolist() == [5, 5, 5, 5]
