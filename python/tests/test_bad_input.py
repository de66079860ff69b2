"""Bad input to every Python call (acceptance): damaged run folders, ids and numbers end in
Python exceptions, never a PanicException; sizes beyond this machine's memory are a
MemoryError before anything is allocated."""

import shutil
import subprocess
import sys

import numpy as np
import plastic
import pytest

DAMAGED = {
    "empty": b"",
    "garbage": b"\x00\xff\xfe garbage \x00\n",
    "half a table": b'[run]\nname = "x"\n[en',
}

ENV_IDS = [
    "",
    "nope",
    "maze:size=-1",
    "maze:size=nan",
    "maze:size=4294967296",
    "maze:nope=1",
    "bandit-dependent-easy:len=0",
    "\x01\xff",
    "gym:CartPole-v1",
]

NUMBERS = [0, -1, float("nan"), 2.5, 10**30, "3", None]


def _no_panic(call, *args, **kwargs):
    """Calls `call`: a result or an ordinary exception with a one-paragraph message."""
    try:
        call(*args, **kwargs)
    except BaseException as e:  # noqa: BLE001 (PanicException derives from BaseException)
        what = f"{getattr(call, '__name__', call)}{args!r:.200} {kwargs!r:.200}"
        assert type(e).__name__ != "PanicException", f"{what} panicked: {e}"
        assert isinstance(e, Exception), f"{what}: {type(e).__name__}: {e}"
        assert "panicked" not in str(e) and "\n\n" not in str(e), f"{what}: {e}"


def _damaged_runs(run, tmp_path):
    """Copies of `run`, each with one file emptied, garbled, cut short or made a folder."""
    checkpoints = (run / "checkpoints").iterdir()
    checkpoint = max(p for p in checkpoints if not p.name.startswith("."))
    targets = [
        p.relative_to(run)
        for p in (
            run / "config.toml",
            checkpoint / "config.toml",
            checkpoint / "state.safetensors",
            checkpoint / "progress.json",
        )
    ]
    for t, target in enumerate(targets):
        for name, data in [*DAMAGED.items(), ("folder", None)]:
            copy = tmp_path / f"run-{t}-{name.replace(' ', '-')}"
            shutil.copytree(run, copy)
            (copy / target).unlink()
            if data is None:
                (copy / target).mkdir()
            else:
                (copy / target).write_bytes(data)
            yield copy


def test_sizes_beyond_the_memory_are_memory_errors(maze_run):
    need = r"this needs at least [\d.]+ GiB of memory and [\d.]+ [GM]iB is available"
    with pytest.raises(MemoryError, match=need + r": .*environments \(num_envs 100000000000"):
        plastic.make_vec("maze", 100_000_000_000)
    policy = plastic.load(maze_run)
    with pytest.raises(MemoryError, match=need + r": .*state and traces \(1000000000 rows"):
        policy.initial_state(1_000_000_000)
    obs = np.zeros((3_000_000, policy.observation_space.shape[0]), np.float32)
    with pytest.raises(MemoryError, match=need + r": .*\(3000000 rows × hidden 100²\)"):
        policy.predict(obs)
    with pytest.raises(MemoryError, match=need + r": .*results of episodes"):
        plastic.evaluate(policy, episodes=10**13)


def test_libtorch_allocation_failures_are_memory_errors(maze_run):
    """The check counts a lower bound against the machine's free memory, so an allocation it
    lets through may still fail in libtorch: under an address-space limit 1 GiB above what the
    process holds, a state of 2.4 GB (60,000 rows × H 100², float32) must be a MemoryError."""
    code = f"""
import resource
import plastic
policy = plastic.load({str(maze_run)!r})
with open("/proc/self/status") as status:
    held = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (held + (1 << 30), resource.RLIM_INFINITY))
try:
    policy.initial_state(60_000)
except MemoryError as e:
    print("MemoryError:", e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert "MemoryError: out of memory: libtorch could not allocate" in out.stdout, out.stdout + out.stderr
    assert "panicked" not in out.stderr, out.stderr


def test_no_call_panics_on_bad_input(maze_run, tmp_path):
    garbage = tmp_path / "garbage"
    garbage.write_bytes(DAMAGED["garbage"])
    paths = ["", str(tmp_path / "no-such-run"), tmp_path, garbage]
    paths += _damaged_runs(maze_run, tmp_path)
    for path in paths:
        _no_panic(plastic.load, path)
    for value in [None, 3, b"\xff"]:
        _no_panic(plastic.load, value)
    for device in ["nope", "cuda:99", "cuda:-1", ""]:
        _no_panic(plastic.load, maze_run, device=device)
    for seed in [-1, 2**70, float("nan")]:
        _no_panic(plastic.load, maze_run, seed=seed)

    for env_id in ENV_IDS:
        _no_panic(plastic.make, env_id)
        _no_panic(plastic.make_vec, env_id, 2)
        _no_panic(plastic.rollout, env_id, episodes=2)
    for value in NUMBERS:
        _no_panic(plastic.make, "maze", size=value)
        _no_panic(plastic.make_vec, "maze", value)
        _no_panic(plastic.make_vec, "maze", 2, seed=value)

    policy, other = plastic.load(maze_run), plastic.load(maze_run)
    obs_dim = policy.observation_space.shape[0]
    for obs in [
        np.full((2, obs_dim), np.nan, np.float32),
        np.full((2, obs_dim), np.inf),
        np.full((2, obs_dim), 3e38, np.float32),
        np.zeros((2, obs_dim + 1)),
        np.zeros((0, obs_dim)),
        np.zeros((2, 2, obs_dim)),
        np.array([["a"] * obs_dim]),
        np.array([None] * obs_dim),
        "text",
        None,
    ]:
        _no_panic(policy.predict, obs)
    obs = np.zeros((2, obs_dim), np.float32)
    for state in [other.initial_state(2), policy.initial_state(3), "state"]:
        _no_panic(policy.predict, obs, state)
    for starts in [[True], ["a", "b"], np.full(2, np.nan)]:
        _no_panic(policy.predict, obs, None, starts)
    for value in NUMBERS:
        _no_panic(policy.initial_state, value)
        _no_panic(plastic.evaluate, policy, episodes=value)
        _no_panic(plastic.evaluate, policy, episodes=2, seed=value)
        _no_panic(plastic.rollout, "maze", episodes=value)
        _no_panic(plastic.rollout, "maze", episodes=2, batch=value)
        _no_panic(plastic.rollout, "maze", episodes=2, seed=value)
    for env_id in ENV_IDS:
        _no_panic(plastic.evaluate, policy, env_id=env_id, episodes=2)
    for target in ["not a policy", 3, object()]:
        _no_panic(plastic.evaluate, target, env_id="maze", episodes=2)
        _no_panic(plastic.rollout, "maze", target, episodes=2)
