"""The Python half of plastic's Gymnasium bridge.

Builds a synchronous vector env that resets an ended episode within the same step (so the
observation it ended on is in info["final_obs"]) and hands Rust arrays it copies through the
buffer protocol: float32 observations [B, obs_dim], float64 rewards, uint8 flags.
"""

import ast
import os
import threading

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box, Discrete


class Unsupported(Exception):
    """The environment is valid but plastic's agents cannot act in it."""


def parse_value(text):
    """`true`, `false` and `none` in any case, Python literals, else the text as a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


class Flattener:
    """Turns a batch of observations into float32 rows: Box flattened, Discrete one-hot."""

    def __init__(self, space):
        if isinstance(space, Box):
            self.one_hot_start = None
            self.dim = int(np.prod(space.shape, dtype=np.int64))
        elif isinstance(space, Discrete):
            self.one_hot_start = int(space.start)
            self.dim = int(space.n)
        else:
            raise Unsupported(
                f"observation space {space} is not supported; "
                "plastic reads Box (flattened) and Discrete (one-hot) observations"
            )

    def rows(self, obs, n):
        if self.one_hot_start is None:
            # Rust copies any strided float32 buffer: no copy here when it already is one.
            return np.asarray(obs, dtype=np.float32).reshape(n, self.dim)
        out = np.zeros((n, self.dim), dtype=np.float32)
        out[np.arange(n), np.asarray(obs, dtype=np.int64).reshape(n) - self.one_hot_start] = 1.0
        return out


# Creating an env imports its module on first use; two threads importing the same module at once
# can see it half-initialised, so creations take turns (acquiring this lock releases the GIL).
_MAKE_LOCK = threading.Lock()


class KeepsFrames(gym.Wrapper):
    """Renders after every reset and every step: the vector env resets an ended episode within
    the step, and the frame the episode ended on would otherwise be lost."""

    def reset(self, **kwargs):
        out = self.env.reset(**kwargs)
        self.reset_frame = self.env.render()
        return out

    def step(self, action):
        out = self.env.step(action)
        self.step_frame = self.env.render()
        return out


def make_vec(env_id, kwargs, num_envs, render):
    """The vector env every bridge and benchmark uses: sync, same-step autoreset, no copies;
    with `render`, `rgb_array` frames kept by `KeepsFrames`."""
    kwargs = {key: parse_value(value) for key, value in kwargs}
    if render:
        kwargs["render_mode"] = "rgb_array"
        # Frames are drawn off-screen: keep pygame-based renderers from opening a display
        # (and from complaining on stderr when there is none).
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    with _MAKE_LOCK:
        return gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP, "copy": False},
            wrappers=[KeepsFrames] if render else None,
            **kwargs,
        )


class Bridge:
    def __init__(self, env_id, kwargs, num_envs, render):
        self.env = make_vec(env_id, kwargs, num_envs, render)
        self.num_envs = num_envs
        self.stepped = False
        actions = self.env.single_action_space
        if not isinstance(actions, Discrete):
            kind = "continuous " if isinstance(actions, Box) else ""
            raise Unsupported(
                f"{kind}action space {actions} is not supported; "
                "plastic's agents choose among discrete actions (gymnasium.spaces.Discrete)"
            )
        self.action_start = int(actions.start)
        self.num_actions = int(actions.n)
        self.obs = Flattener(self.env.single_observation_space)
        self.obs_dim = self.obs.dim
        self.render_fps = float(self.env.metadata.get("render_fps") or 30)
        spec = self.env.envs[0].spec
        if spec is None or spec.max_episode_steps is None:
            # Evaluations (`plastic eval`, and during training) run whole episodes: one that
            # never ends would make them wait for ever.
            self.env.close()
            args = "".join(f"{key}={value}&" for key, value in kwargs)
            raise Unsupported(
                "it has no time limit, so an episode may never end and evaluation would wait "
                f"for ever; give it one: 'gym:{env_id}?{args}max_episode_steps=N' (N above its "
                "longest natural episode: the limit ends longer ones as truncations)"
            )

    def reset(self, seed):
        self.stepped = False
        obs, _ = self.env.reset(seed=seed)
        return self.obs.rows(obs, self.num_envs)

    def step(self, actions):
        """`actions`: B native-endian int64s, 0-based. Cheap numpy calls only: this runs once per
        vector step, and its cost is what the bridge adds to Gymnasium's own."""
        self.stepped = True
        chosen = np.frombuffer(actions, dtype=np.int64)
        if self.action_start:
            chosen = chosen + self.action_start
        obs, rewards, terminated, truncated, info = self.env.step(chosen)
        obs = self.obs.rows(obs, self.num_envs)
        final = obs
        if "final_obs" in info:
            final = obs.copy()
            for row in np.flatnonzero(info["_final_obs"]):
                final[row] = self.obs.rows(info["final_obs"][row], 1)[0]
        return obs, final, rewards, terminated.view(np.uint8), truncated.view(np.uint8)

    def close(self):
        self.env.close()

    def render(self):
        """The first environment's frame after the last reset or step (for a step that ended the
        episode, its last state), as a contiguous uint8 [height, width, 3] array."""
        keeper = self.env.envs[0]
        frame = keeper.step_frame if self.stepped else keeper.reset_frame
        if frame is None:
            raise Unsupported("the environment returned no rgb_array frame")
        return np.ascontiguousarray(np.asarray(frame, dtype=np.uint8)[:, :, :3])


def python_loop(env_id, kwargs, num_envs, steps, seed):
    """The baseline for `plastic bench env`: the same vector env stepped by a plain Python loop
    with random actions (drawn beforehand and cycled, as the Rust side does). Returns seconds."""
    import time

    env = make_vec(env_id, kwargs, num_envs, False)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(64)]
    start = time.perf_counter()
    for i in range(steps):
        env.step(actions[i % 64])
    elapsed = time.perf_counter() - start
    env.close()
    return elapsed
