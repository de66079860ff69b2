"""plastic's environments as Gymnasium environments: one (``PlasticEnv``) and a batch stepped
natively (``PlasticVectorEnv``, Gymnasium's same-step autoreset), registered as
``plastic/<Family>-v0`` ids."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from . import _native

#: Pixels per cell of a drawn grid world (``render_mode="rgb_array"``).
CELL_PIXELS = 24

_SEED_LIMIT = 2**63


def families() -> list[dict[str, str]]:
    """Every environment family: name, summary, parameters with their defaults, Gymnasium id."""
    return [
        {"name": name, "summary": summary, "params": params, "gym_id": gym_id(name)}
        for name, summary, params in _native.families()
    ]


def gym_id(family: str) -> str:
    """The Gymnasium id of family ``family``: ``maze`` -> ``plastic/Maze-v0``, ``tmaze`` ->
    ``plastic/TMaze-v0``, ``bandit-dependent-easy`` -> ``plastic/Bandit-dependent-easy-v0``."""
    name = "TMaze" + family[5:] if family.startswith("tmaze") else family[:1].upper() + family[1:]
    return f"plastic/{name}-v0"


def register_envs() -> None:
    """Registers every family with Gymnasium (done by ``import plastic``). The keyword
    arguments of ``gymnasium.make`` are the id's parameters: ``gymnasium.make("plastic/Maze-v0",
    size=9)`` is ``maze:size=9``; ``gymnasium.make_vec`` steps the batch natively."""
    for name, _, _ in _native.families():
        env_id = gym_id(name)
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point="plastic.envs:PlasticEnv",
            vector_entry_point="plastic.envs:PlasticVectorEnv",
            kwargs={"env_id": name},
        )


def _format(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)


def environment(env_id: str, params: dict[str, Any] | None = None) -> _native.Environment:
    """The environment named by ``env_id`` (``maze``, ``maze:size=9``, ...) with ``params``
    added to its parameters; unknown names, keys and bad values raise ``plastic.EnvError``."""
    if not isinstance(env_id, str):
        raise TypeError(f"an environment id is a string such as 'maze:size=9', got {env_id!r}")
    if params:
        extra = ",".join(f"{k}={_format(v)}" for k, v in params.items())
        env_id = f"{env_id},{extra}" if ":" in env_id else f"{env_id}:{extra}"
    return _native.Environment(env_id)


def observation_space(env: _native.Environment) -> spaces.Box:
    """One observation's space: a float32 Box with the environment's bounds (unbounded where
    it declares none)."""
    bounds = env.obs_bounds()
    if bounds is None:
        return spaces.Box(-np.inf, np.inf, shape=(env.obs_dim,), dtype=np.float32)
    low, high = (np.array(b, dtype=np.float32) for b in bounds)
    return spaces.Box(low, high, dtype=np.float32)


def _spaces(env: _native.Environment) -> tuple[spaces.Box, spaces.Discrete]:
    return observation_space(env), spaces.Discrete(env.num_actions)


def _native_seed(seed: Any) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"a seed is a non-negative integer, got {seed!r}")
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"a seed is an integer from 0 to 2**64 - 1, got {seed}")
    return int(seed)


def _check_render_mode(env: _native.Environment, render_mode: str | None) -> None:
    if render_mode is None:
        return
    if render_mode != "rgb_array":
        raise ValueError(f"render_mode {render_mode!r}: plastic environments draw 'rgb_array'")
    if not env.has_grid:
        raise ValueError(f"`{env.id}` cannot be drawn (only grid worlds such as the maze can)")


def _metadata(env: _native.Environment, metadata: dict[str, Any]) -> dict[str, Any]:
    """The class's metadata, with ``rgb_array`` among the render modes only where it draws."""
    return {**metadata, "render_modes": ["rgb_array"] if env.has_grid else []}


class PlasticEnv(gymnasium.Env):
    """One plastic environment as a ``gymnasium.Env``.

    ``reset(seed=S)`` starts the episode the library's batch of one starts with seed ``S``.
    Episodes end by truncation at the environment's fixed length (bandits, mazes).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(self, env_id: str = "maze", render_mode: str | None = None, **params: Any):
        self._environment = environment(env_id, params)
        _check_render_mode(self._environment, render_mode)
        self.metadata = _metadata(self._environment, self.metadata)
        self.render_mode = render_mode
        self.env_id = self._environment.id
        self.observation_space, self.action_space = _spaces(self._environment)
        self._env = self._environment.build(1)
        self._views: tuple | None = None
        self._obs: np.ndarray | None = None
        self._ended = False
        self._action = np.zeros(1, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            seed = _native_seed(seed)
        super().reset(seed=seed)
        if seed is None and self._ended:
            # The library has started the next episode already (same-step reset).
            self._ended = False
            return self._current()[0].copy(), {}
        native = _native_seed(seed) if seed is not None else int(self.np_random.integers(_SEED_LIMIT))
        self._obs = self._env.reset(native)
        self._views = None
        self._ended = False
        return self._obs[0].copy(), {}

    def _current(self) -> np.ndarray:
        return self._views[0] if self._views is not None else self._obs

    def step(self, action):
        if self._obs is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(
                f"action {action!r} is not in the action space {self.action_space} "
                f"(an integer from 0 to {self.action_space.n - 1})"
            )
        self._action[0] = int(action)
        views = self._env.step(self._action)
        if views is not None:
            self._views = views
        obs, final_obs, rewards, terminated, truncated, regret = self._views
        term, trunc = bool(terminated[0]), bool(truncated[0])
        self._ended = term or trunc
        info = {} if regret is None else {"regret": float(regret[0])}
        shown = final_obs[0] if self._ended else obs[0]
        return shown.copy(), float(rewards[0]), term, trunc, info

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn(
                'render() was called without a render_mode: make the environment with render_mode="rgb_array"'
            )
            return None
        if self._obs is None:
            raise gymnasium.error.ResetNeeded("call reset() before render()")
        return self._env.render(0, CELL_PIXELS)


class PlasticVectorEnv(VectorEnv):
    """``num_envs`` plastic environments stepped together in Rust, as a
    ``gymnasium.vector.VectorEnv`` with same-step autoreset (``AutoresetMode.SAME_STEP``): a
    row whose episode ends shows the first observation of its next episode, and the one it
    ended on is in ``infos["final_obs"]`` (masked by ``infos["_final_obs"]``).

    ``reset(seed=S)``: row ``i`` draws from the library's stream of ``(S, i)``, as
    ``plastic rollout``/``eval`` seed their batches. ``copy=False`` returns read-only views
    of the environment's own buffers (no copy per step; they change at the next step).
    Bandits add ``infos["regret"]``, the pseudo-regret of the action just taken.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "autoreset_mode": AutoresetMode.SAME_STEP,
        "render_modes": ["rgb_array"],
        "render_fps": 8,
    }

    def __init__(
        self,
        env_id: str = "maze",
        num_envs: int = 1,
        *,
        seed: int | None = None,
        copy: bool = True,
        render_mode: str | None = None,
        **params: Any,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self._environment = environment(env_id, params)
        _check_render_mode(self._environment, render_mode)
        self.metadata = _metadata(self._environment, self.metadata)
        self.render_mode = render_mode
        self.env_id = self._environment.id
        self.num_envs = int(num_envs)
        self.copy = copy
        # Built first: its memory check (MemoryError) counts the batched spaces' bounds and
        # the copies of the observations made here, before numpy allocates any of them.
        obs_bytes = self._environment.obs_dim * np.dtype(np.float32).itemsize
        self._env = self._environment.build(self.num_envs, 3 * obs_bytes + 16)
        self.single_observation_space, self.single_action_space = _spaces(self._environment)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._default_seed = None if seed is None else _native_seed(seed)
        self._views: tuple | None = None
        self._obs: np.ndarray | None = None
        self._all = np.ones(self.num_envs, dtype=np.bool_)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and self._default_seed is not None:
            seed, self._default_seed = self._default_seed, None
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise TypeError(
                "plastic's vector environments take one integer seed (row i then draws from "
                f"the stream of (seed, i)), got {seed!r}"
            )
        if seed is not None:
            seed = _native_seed(seed)
        super().reset(seed=seed)
        native = _native_seed(seed) if seed is not None else int(self.np_random.integers(_SEED_LIMIT))
        self._obs = self._env.reset(native)
        self._views = None
        return (self._obs.copy() if self.copy else self._obs), {}

    def step(self, actions):
        if self._obs is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        if type(actions) is not np.ndarray:
            actions = np.asarray(actions)
        views = self._env.step(actions)
        if views is not None:
            self._views = views
        obs, final_obs, rewards, terminated, truncated, regret = self._views
        infos: dict[str, Any] = {}
        if regret is not None:
            infos["regret"] = regret.copy()
            infos["_regret"] = self._all
        done = terminated | truncated
        if done.any():
            rows = np.flatnonzero(done)
            final = np.full(self.num_envs, None, dtype=object)
            ended = final_obs[rows].copy()
            for i, row in enumerate(rows):
                final[row] = ended[i]
            infos["final_obs"] = final
            infos["_final_obs"] = done
            infos["final_info"] = {}
            infos["_final_info"] = done.copy()
        if self.copy:
            return obs.copy(), rewards.copy(), terminated.copy(), truncated.copy(), infos
        return obs, rewards, terminated, truncated, infos

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn('render() was called without a render_mode: use render_mode="rgb_array"')
            return None
        if self._obs is None:
            raise gymnasium.error.ResetNeeded("call reset() before render()")
        return tuple(self._env.render(i, CELL_PIXELS) for i in range(self.num_envs))


def make(env_id: str = "maze", *, render_mode: str | None = None, **params: Any) -> PlasticEnv:
    """One environment (``gymnasium.make`` of its ``plastic/...`` id gives the same, wrapped in
    Gymnasium's checkers)."""
    return PlasticEnv(env_id, render_mode=render_mode, **params)


def make_vec(
    env_id: str = "maze",
    num_envs: int = 1,
    *,
    seed: int | None = None,
    copy: bool = True,
    render_mode: str | None = None,
    **params: Any,
) -> PlasticVectorEnv:
    """``num_envs`` environments stepped natively; ``seed`` seeds the first ``reset()`` that
    names no seed. ``env_id`` as the CLI takes it (``maze``, ``maze:size=9,len=100``,
    ``bandit-dependent-easy``); ``params`` are added to it (``make_vec("maze", 8, size=9)``)."""
    return PlasticVectorEnv(env_id, num_envs, seed=seed, copy=copy, render_mode=render_mode, **params)
