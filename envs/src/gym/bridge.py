"""The Python half of plastic's Gymnasium bridge.

Builds a synchronous vector env that resets an ended episode within the same step (so the
observation it ended on is in info["final_obs"]) and hands Rust arrays it copies through the
buffer protocol: float32 observations [B, obs_dim], float64 rewards, uint8 flags.
"""

import ast
import importlib
import importlib.util
import os
import sys
import threading

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box, Dict, Discrete, MultiBinary, MultiDiscrete


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


# The id's keyword that names wrappers to apply, rather than an argument of `gymnasium.make`.
WRAPPERS_KEY = "wrappers"


def flat_space_advice(space):
    """Why `space` is not an observation plastic reads, and the wrappers that make it one, as
    the `wrappers=` keyword of the id."""
    if isinstance(space, Dict) and "image" in space.spaces:
        # MiniGrid's observations: the egocentric view, the direction, the mission text.
        return "a dictionary with an image", "minigrid.wrappers.ImgObsWrapper"
    if isinstance(space, Box):
        return f"a Box of rank {len(space.shape)}", "FlattenObservation"
    return f"a {type(space).__name__} space", "FlattenObservation"


class Flattener:
    """Turns a batch of observations into float32 rows: Box vectors and images (rank 3,
    `image` = (shape, is uint8) for the agent's encoder) as they are, Discrete one-hot.
    Anything else (dictionaries, tuples, other ranks) is refused with the wrappers that fit,
    rather than flattened here: flattening is a choice the user should see."""

    def __init__(self, space):
        self.image = None
        if isinstance(space, Box) and len(space.shape) in (0, 1, 3):
            self.one_hot_start = None
            self.dim = int(np.prod(space.shape, dtype=np.int64))
            if len(space.shape) == 3:
                self.image = (list(space.shape), space.dtype == np.uint8)
        elif isinstance(space, Discrete):
            self.one_hot_start = int(space.start)
            self.dim = int(space.n)
        else:
            what, wrappers = flat_space_advice(space)
            raise Unsupported(
                f"observation space {space} is {what}; plastic reads flat observations "
                "(a Box vector, a Box image of rank 3, or Discrete as one-hot): apply a wrapper "
                "that fits "
                f"with the id's keyword '{WRAPPERS_KEY}={wrappers}' (see docs/gymnasium.md)"
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


class MaskVelocity(gym.ObservationWrapper):
    """Zeroes the velocities of a classic-control observation, so that a policy has to infer
    them from what it remembers (rl-baselines3-zoo's MaskVelocityWrapper, the benchmark of
    sb3-contrib's RecurrentPPO). The observation keeps its shape and bounds."""

    # Indices of the velocities in each supported environment's observation.
    VELOCITY_INDICES = {
        "CartPole-v1": [1, 3],
        "Acrobot-v1": [4, 5],
        "MountainCar-v0": [1],
        "MountainCarContinuous-v0": [1],
        "Pendulum-v1": [2],
        "LunarLander-v3": [2, 3, 5],
        "LunarLanderContinuous-v3": [2, 3, 5],
    }

    def __init__(self, env):
        super().__init__(env)
        env_id = env.spec.id if env.spec is not None else None
        if env_id not in self.VELOCITY_INDICES:
            raise Unsupported(
                f"wrapper 'MaskVelocity' knows the velocities of "
                f"{', '.join(self.VELOCITY_INDICES)} only, not of '{env_id}'"
            )
        self.mask = np.ones(env.observation_space.shape, dtype=env.observation_space.dtype)
        self.mask[self.VELOCITY_INDICES[env_id]] = 0

    def observation(self, observation):
        return observation * self.mask


class JointDiscrete(gym.ActionWrapper):
    """A MultiDiscrete or MultiBinary action space as one Discrete over every combination of
    its components (row-major, the last component fastest), for agents that take Discrete
    actions: one categorical over the joint action, whose size is the product of the
    components' (so for small spaces)."""

    def __init__(self, env):
        super().__init__(env)
        space = env.action_space
        if isinstance(space, MultiBinary):
            self.nvec, self.start = np.full(space.shape, 2, np.int64), np.zeros(space.shape, np.int64)
        elif isinstance(space, MultiDiscrete):
            self.nvec, self.start = space.nvec.astype(np.int64), space.start.astype(np.int64)
        else:
            raise Unsupported(
                f"wrapper 'JointDiscrete' turns MultiDiscrete and MultiBinary action spaces into "
                f"one Discrete, not {space}"
            )
        self.dtype = space.dtype
        self.action_space = Discrete(int(np.prod(self.nvec, dtype=np.int64)))

    def action(self, action):
        chosen = np.unravel_index(int(action), self.nvec.reshape(-1))
        return (np.asarray(chosen, np.int64).reshape(self.nvec.shape) + self.start).astype(self.dtype)


# Wrappers of the bridge's own, found by their bare name before `gymnasium.wrappers`.
OWN_WRAPPERS = {"MaskVelocity": MaskVelocity, "JointDiscrete": JointDiscrete}


def wrapper_class(name):
    """A wrapper named in `wrappers=`: a dotted name imports its module, a bare one is one of
    the bridge's own (`OWN_WRAPPERS`) or of `gymnasium.wrappers`."""
    if name.strip() in OWN_WRAPPERS:
        return OWN_WRAPPERS[name.strip()]
    module, _, attr = name.strip().rpartition(".")
    try:
        return getattr(importlib.import_module(module or "gymnasium.wrappers"), attr)
    except (ImportError, AttributeError) as e:
        raise Unsupported(f"wrapper '{name}' in '{WRAPPERS_KEY}=' cannot be found: {e}") from None


# Environments handed over as Python objects (`plastic.Trainer(env=...)`): the id a run records
# for them (what follows `gym:`) -> a callable making one environment. In this process such an
# id builds from its callable rather than from Gymnasium's registry.
OBJECTS = {}


def object_key(env_id, kwargs):
    """The id after `gym:` as the Rust side writes it back: `Id?key=value&...`."""
    query = "&".join(f"{key}={value}" for key, value in kwargs)
    return f"{env_id}?{query}" if query else env_id


def make_vec(env_id, kwargs, num_envs, render):
    """The vector env every bridge and benchmark uses: sync, same-step autoreset, no copies;
    the id's wrappers, first named innermost; with `render`, `rgb_array` frames kept by
    `KeepsFrames` (outermost, so it sees every step)."""
    factory = OBJECTS.get(object_key(env_id, kwargs))
    if factory is not None:
        make = (lambda: KeepsFrames(factory())) if render else factory
        return gym.vector.SyncVectorEnv(
            [make] * num_envs, copy=False, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
        )
    wrappers = [
        wrapper_class(name)
        for key, value in kwargs
        if key == WRAPPERS_KEY
        for name in value.split(",")
    ]
    kwargs = {key: parse_value(value) for key, value in kwargs if key != WRAPPERS_KEY}
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
            wrappers=wrappers + [KeepsFrames] if render else wrappers,
            **kwargs,
        )


def has_time_limit(env):
    """Whether `env` ends its episodes after a number of steps: its spec says so, or a
    `TimeLimit` wraps it (an object built without `gymnasium.make` has no spec)."""
    spec = env.spec
    if spec is not None and spec.max_episode_steps is not None:
        return True
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return True
        env = env.env
    return False


class Bridge:
    def __init__(self, env_id, kwargs, num_envs, render):
        self.env = make_vec(env_id, kwargs, num_envs, render)
        self.num_envs = num_envs
        self.stepped = False
        actions = self.env.single_action_space
        # `action_box`: None for discrete actions, else (shape, low, high) flattened.
        # `action_start`: the Discrete space's first value, Rust's `EnvSpec::action_start`.
        if isinstance(actions, Discrete):
            self.action_start = int(actions.start)
            self.num_actions = int(actions.n)
            self.action_box = None
        elif isinstance(actions, Box):
            if not (np.all(np.isfinite(actions.low)) and np.all(np.isfinite(actions.high))):
                self.env.close()
                raise Unsupported(
                    f"action space {actions} is unbounded; plastic clips its Gaussian "
                    "policy's sample to the bounds, so every component needs finite ones "
                    "(gymnasium.wrappers.RescaleAction or ClipAction can give them)"
                )
            self.action_start = 0
            self.action_shape = tuple(actions.shape)
            self.action_dtype = actions.dtype
            low = actions.low.astype(np.float32).reshape(-1)
            high = actions.high.astype(np.float32).reshape(-1)
            self.num_actions = int(low.size)
            self.action_box = (list(self.action_shape), low.tolist(), high.tolist())
        elif isinstance(actions, (MultiDiscrete, MultiBinary)):
            self.env.close()
            raise Unsupported(
                f"action space {actions} is not supported; plastic's agents take Discrete and "
                f"Box actions: apply the bridge's wrapper with the id's keyword "
                f"'{WRAPPERS_KEY}=JointDiscrete', which makes it one Discrete over every "
                "combination of its components (see docs/gymnasium.md)"
            )
        else:
            self.env.close()
            raise Unsupported(
                f"action space {actions} is not supported; plastic's agents take Discrete "
                "and Box actions"
            )
        self.obs = Flattener(self.env.single_observation_space)
        self.obs_dim = self.obs.dim
        self.image = self.obs.image
        self.render_fps = float(self.env.metadata.get("render_fps") or 30)
        if object_key(env_id, kwargs) in OBJECTS:
            if not has_time_limit(self.env.envs[0]):
                self.env.close()
                raise Unsupported(
                    "the environment object has no time limit, so an episode may never end "
                    "and evaluation would wait for ever; wrap it in "
                    "gymnasium.wrappers.TimeLimit(env, max_episode_steps=N)"
                )
            return
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
        """`actions`: B native-endian int64s, the Discrete space's own values (Rust adds
        `action_start`, which it read from here), or for a Box action space B × dim
        float32s. Cheap numpy calls only: this runs once per
        vector step, and its cost is what the bridge adds to Gymnasium's own."""
        if self.action_box is None:
            chosen = np.frombuffer(actions, dtype=np.int64)
        else:
            # B × dim native-endian float32s, already clipped to the bounds by Rust.
            chosen = np.frombuffer(actions, dtype=np.float32).reshape(
                (self.num_envs,) + self.action_shape
            )
            chosen = chosen.astype(self.action_dtype, copy=False)
        self.stepped = True
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


def source_dirs(env_id, kwargs):
    """The folders outside the interpreter's installation that the id's own modules (its
    env's, before the `:`, and its wrappers') were imported from: what `sys.path` must hold
    to build the env again from another folder or without `PYTHONPATH`."""
    names = [env_id.partition(":")[0]] if ":" in env_id else []
    names += [
        name.strip().rpartition(".")[0]
        for key, value in kwargs
        if key == WRAPPERS_KEY
        for name in value.split(",")
    ]
    installed = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    dirs = []
    for name in filter(None, names):
        spec = importlib.util.find_spec(name.partition(".")[0])
        if spec is None:
            continue
        if spec.submodule_search_locations:
            package = next(iter(spec.submodule_search_locations))
            top = os.path.dirname(os.path.abspath(package))
        elif spec.origin and os.path.isfile(spec.origin):
            top = os.path.dirname(os.path.abspath(spec.origin))
        else:
            continue
        real = os.path.realpath(top)
        inside = any(real == p or real.startswith(p + os.sep) for p in installed)
        if not inside and top not in dirs:
            dirs.append(top)
    return dirs


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
