"""Trained agents and reference policies behind sb3-contrib RecurrentPPO's ``predict``, and
rollouts and evaluations computed as ``plastic rollout`` and ``plastic eval`` compute them."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from gymnasium import spaces

from . import _native
from .envs import environment, observation_space

State = _native.State
State.__doc__ = (
    "What a policy carries between steps, one row per episode, as numpy on access: hidden "
    "(h, [B, H]), cell (LSTM cores), hebb (Hebbian trace, [B, H, H], rows post-synaptic), elig "
    "(eligibility trace, retroactive modulation), modulator (last modulator output). Immutable: "
    "predict returns a new one."
)


def _observations(observation: Any, obs_dim: int) -> tuple[np.ndarray, bool]:
    """``[obs_dim]`` or ``[B, obs_dim]`` real numbers as C-contiguous float32 ``[B, obs_dim]``,
    and whether a single observation was given."""
    obs = np.asarray(observation)
    if obs.dtype.kind not in "biuf":
        raise TypeError(f"observations must be real numbers (float32 preferred), got dtype {obs.dtype}")
    single = obs.ndim == 1
    if single:
        obs = obs[None, :]
    if obs.ndim != 2 or obs.shape[1] != obs_dim or obs.shape[0] == 0:
        raise ValueError(
            f"observations of shape {np.shape(observation)}; expected ({obs_dim},) for one "
            f"environment or (batch, {obs_dim}) for a batch"
        )
    return np.ascontiguousarray(obs, dtype=np.float32), single


def _frames(observation: Any, image: tuple[list[int], bool, bool]) -> tuple[np.ndarray, bool]:
    """An image agent's frames, one ``[*shape]`` or a batch ``[B, *shape]``, as C-contiguous
    float32 ``[B, H * W * C]`` in the environment's layout (``image`` = its shape, whether the
    channels come first, is uint8), and whether a single frame was given. Frames with the
    channels at the other end are transposed first, as sb3's ``predict`` transposes them."""
    shape, channels_first, _ = image
    shape = tuple(shape)
    obs = np.asarray(observation)
    if obs.dtype.kind not in "biuf":
        raise TypeError(f"frames must be real numbers (uint8 or float), got dtype {obs.dtype}")
    single = obs.ndim == 3
    batch = obs[None] if single else obs
    # The same frames with the channels moved to the other end: (C, H, W) <-> (H, W, C).
    other = shape[1:] + shape[:1] if channels_first else shape[-1:] + shape[:-1]
    if batch.ndim == 4 and batch.shape[0] > 0 and batch.shape[1:] == shape:
        pass
    elif batch.ndim == 4 and batch.shape[0] > 0 and batch.shape[1:] == other:
        batch = np.moveaxis(batch, -1, 1) if channels_first else np.moveaxis(batch, 1, -1)
    else:
        layout = "(C, H, W)" if channels_first else "(H, W, C)"
        raise ValueError(
            f"observations of shape {np.shape(observation)}; this agent reads {layout} frames of "
            f"shape {shape} (or {other}, the channels at the other end): one frame, or a batch "
            f"(batch, {', '.join(map(str, shape))})"
        )
    return np.ascontiguousarray(batch.reshape(batch.shape[0], -1), dtype=np.float32), single


def _episode_start(episode_start: Any, batch: int) -> np.ndarray | None:
    if episode_start is None:
        return None
    starts = np.asarray(episode_start)
    if starts.dtype.kind not in "biuf":
        raise TypeError(f"episode_start must be booleans, got dtype {starts.dtype}")
    starts = starts.reshape(-1)
    if starts.shape[0] != batch:
        raise ValueError(f"episode_start has {starts.shape[0]} entries for {batch} observations")
    return np.ascontiguousarray(starts != 0)


def _oracle_stats(target: Any, episodes: int, seed: int) -> dict | None:
    """The oracle's stats on ``episodes`` episodes seeded with ``seed``, as ``plastic eval``
    reports them; ``None`` where the environment has no oracle."""
    stats = target.oracle_stats(episodes, seed)
    return None if stats is None else json.loads(stats)


def _report(
    target: Any,
    seed: int,
    episodes: int,
    policies: list,
    oracle: dict | None,
    checkpoint: str | None = None,
    env_steps_trained: int | None = None,
) -> dict:
    """The report ``plastic rollout --json`` and ``plastic eval --json`` print (one schema):
    ``policies`` holds the judged policy first, then any references; ``oracle`` (the oracle's
    stats on the same episodes, ``_oracle_stats``) gives the percentage of its reward."""
    percent = None
    if oracle is not None:
        percent = 100.0 * policies[0]["reward"]["mean"] / oracle["reward"]["mean"]
    return {
        "env": target.id,
        "seed": seed,
        "episodes": episodes,
        "checkpoint": checkpoint,
        "env_steps_trained": env_steps_trained,
        "policies": policies,
        "bayes_optimal_exact": target.bayes_optimal_regret(),
        "percent_of_oracle": percent,
    }


class Policy:
    """A trained agent: the actor-critic of a checkpoint and its plastic recurrent core.

    ``predict`` follows sb3-contrib's RecurrentPPO: numpy in and out, ``state=None`` starts
    every row afresh, ``episode_start`` zeroes the rows it marks (hidden state and traces)
    before acting. Deterministic actions are the most probable ones, exactly as
    ``plastic eval --greedy`` picks them; sampled actions draw row ``i`` from the stream of
    ``(seed, i)``, as ``plastic eval`` does.
    """

    def __init__(self, agent: _native.Agent, obs_space: spaces.Space | None = None):
        self._agent = agent
        if obs_space is not None:
            self.observation_space = obs_space
        elif agent.env_id.startswith("gym:"):
            # Trained on a Gymnasium environment and loaded without it: no plastic Environment
            # describes it, and the agent reads its observations unbounded (uint8 images: 0..255).
            image = agent.image
            if image is None:
                self.observation_space = spaces.Box(-np.inf, np.inf, shape=(agent.obs_dim,), dtype=np.float32)
            elif image[2]:
                self.observation_space = spaces.Box(0, 255, shape=tuple(image[0]), dtype=np.uint8)
            else:
                self.observation_space = spaces.Box(-np.inf, np.inf, shape=tuple(image[0]), dtype=np.float32)
        else:
            self.observation_space = observation_space(agent.env)
        box = agent.action_box
        if box is None:
            self.action_space = spaces.Discrete(agent.num_actions, start=agent.action_start)
        else:
            shape, low, high = box
            low, high = (np.asarray(b, np.float32).reshape(shape) for b in (low, high))
            self.action_space = spaces.Box(low, high, dtype=np.float32)

    @property
    def env_id(self) -> str:
        """The environment it was trained on (canonical id)."""
        return self._agent.env_id

    @property
    def checkpoint(self) -> str:
        return self._agent.checkpoint

    @property
    def config(self) -> str:
        """The run's config.toml, as saved with the checkpoint."""
        return self._agent.config

    @property
    def device(self) -> str:
        return self._agent.device

    @property
    def hidden_size(self) -> int:
        return self._agent.hidden

    @property
    def threads(self) -> int:
        """libtorch's CPU threads it acts with: its run's ``run.threads`` (0: the machine's cores)."""
        return self._agent.threads

    @property
    def env_steps(self) -> int:
        """Environment steps it was trained for."""
        return self._agent.env_steps

    def parameters(self) -> dict[str, np.ndarray]:
        """The network's weights by name (``ac.core.w``, ``ac.core.alpha``, ...)."""
        return dict(self._agent.parameters())

    def seed(self, seed: int) -> None:
        """Restarts the sampling streams: row ``i`` then draws from the stream of ``(seed, i)``."""
        self._agent.seed(seed)

    def initial_state(self, batch: int = 1) -> State:
        """The zero state of ``batch`` fresh episodes."""
        return self._agent.initial_state(batch)

    def predict(
        self,
        observation: Any,
        state: State | None = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, State]:
        """Actions for ``observation`` (``[obs_dim]`` -> one action, ``[B, obs_dim]`` -> ``B``;
        for an image agent, frames ``[*shape]`` or ``[B, *shape]``, HWC or CHW) and the state
        after them. Discrete actions are int64 of shape ``()`` or ``[B]``, the action space's
        own values (from its ``start``);
        continuous ones float32 of the action space's shape (``[B, *shape]`` for a batch),
        clipped to its bounds as sb3's ``predict`` clips them. Deterministic continuous
        actions are the Gaussian's means."""
        image = self._agent.image
        if image is None:
            obs, single = _observations(observation, self._agent.obs_dim)
        else:
            obs, single = _frames(observation, image)
        starts = _episode_start(episode_start, obs.shape[0])
        if state is not None and not isinstance(state, State):
            raise TypeError(
                "state must be None (fresh episodes) or the State a previous predict returned, "
                f"got {type(state).__name__}"
            )
        actions, state = self._agent.step(obs, state, starts, bool(deterministic))
        return (actions.reshape(actions.shape[1:]) if single else actions), state

    def __repr__(self) -> str:
        return f"Policy({self.checkpoint!r}, env={self.env_id!r}, hidden={self.hidden_size}, device={self.device!r})"


def _gym_spaces(env: Any) -> tuple[spaces.Box, tuple]:
    """A Gymnasium env's (or vector env's) single observation space, and what the native
    agent needs of its spaces: ``(obs_dim, num_actions, action_start, action_box, image)``,
    ``action_start`` a Discrete space's ``start`` (0 for Box), the action box
    as ``(shape, low, high)`` flattened, ``None`` for discrete actions, the image as
    ``(shape, is uint8)``, ``None`` for flat observations."""
    obs_space = getattr(env, "single_observation_space", None) or env.observation_space
    act_space = getattr(env, "single_action_space", None) or env.action_space
    if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) not in (0, 1, 3):
        raise ValueError(
            f"observation space {obs_space}: plastic.load(env=...) takes Box observations, flat "
            "or images of rank 3 (wrap others as the run did, e.g. "
            "gymnasium.wrappers.FlattenObservation)"
        )
    obs_dim = int(np.prod(obs_space.shape, dtype=np.int64))
    image = (list(obs_space.shape), obs_space.dtype == np.uint8) if len(obs_space.shape) == 3 else None
    if isinstance(act_space, spaces.Discrete):
        return obs_space, (obs_dim, int(act_space.n), int(act_space.start), None, image)
    if isinstance(act_space, spaces.Box):
        low = act_space.low.astype(np.float32).reshape(-1).tolist()
        high = act_space.high.astype(np.float32).reshape(-1).tolist()
        return obs_space, (obs_dim, len(low), 0, (list(act_space.shape), low, high), image)
    raise ValueError(f"action space {act_space}: plastic's agents take Discrete and Box actions")


def load(path: str | os.PathLike, device: str = "cpu", seed: int = 0, env: Any = None) -> Policy:
    """The agent of a run folder (its newest good checkpoint) or of a checkpoint folder, on
    ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``auto``). Raises ``FileNotFoundError`` for a
    path that does not exist and ``plastic.CheckpointError`` for one that holds no usable
    checkpoint (not a run, none yet, damaged, another version's format).

    An agent trained on a Gymnasium environment (a ``gym:`` id) loads as it is, its
    environment built by the same bridge as the CLI's. ``env`` (an ``Env`` or a ``VectorEnv``
    made with gymnasium) gives the spaces instead, for a run whose id cannot be built again
    here (an environment object handed to ``Trainer``), and the policy's
    ``observation_space``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a string or path, got {type(path).__name__}")
    device = str(device)  # a torch.device works too
    obs_space, sizes = _gym_spaces(env) if env is not None else (None, None)
    return Policy(_native.Agent.load(os.fspath(path), device, int(seed), sizes), obs_space)


class ReferencePolicy:
    """One of an environment's reference policies (``random``, the bandits' ``thompson``,
    ``ucb1``, ``gittins``, ``bayes``, the T-maze's ``win-stay``, ...) for ``num_envs`` rows,
    acting from observations alone, as ``plastic rollout --policy`` runs it."""

    def __init__(self, env_id: str, name: str, num_envs: int, seed: int = 0):
        self._environment = environment(env_id)
        self.name = name
        self.num_envs = num_envs
        self._policy = self._environment.policy(name, num_envs, seed)

    def act(self, observations: Any) -> np.ndarray:
        """One action per row of ``observations`` ``[num_envs, obs_dim]``."""
        obs, _ = _observations(observations, self._environment.obs_dim)
        return self._policy.act(obs)

    def episodes_ended(self, done: Any) -> None:
        """After a step: the rows whose episode ended (and were reset)."""
        self._policy.episodes_ended(np.ascontiguousarray(np.asarray(done, dtype=bool).reshape(-1)))

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        """sb3's contract: ``episode_start`` tells the rows that start afresh."""
        starts = _episode_start(episode_start, self.num_envs)
        if starts is not None and starts.any():
            self._policy.episodes_ended(starts)
        return self.act(observation), True


def reference_policy(env_id: str, name: str, num_envs: int = 1, seed: int = 0) -> ReferencePolicy:
    """Reference policy ``name`` of environment ``env_id`` for ``num_envs`` rows."""
    return ReferencePolicy(env_id, name, num_envs, seed)


def rollout(
    env_id: str,
    policy: Any = "random",
    episodes: int | None = None,
    seed: int = 0,
    batch: int = 256,
    deterministic: bool = False,
) -> dict:
    """``plastic rollout ENV --policy P --episodes N --seed S --batch B --json`` from Python,
    the same numbers: ``policy`` is a reference policy's name (``random``, ``oracle``,
    ...), a loaded ``Policy``, or any object with sb3's ``predict`` (a callable
    ``f(obs) -> actions`` works too). ``episodes`` defaults to the environment's, as the
    CLI's."""
    env = environment(env_id)
    if episodes is None:
        episodes = env.default_eval_episodes()
    target = policy._agent if isinstance(policy, Policy) else policy
    stats = json.loads(_native.rollout(env, target, episodes, seed, batch, deterministic))
    name = policy if isinstance(policy, str) else type(policy).__name__
    return _report(env, seed, episodes, [{"policy": name, **stats}], _oracle_stats(env, episodes, seed))


def evaluate(
    policy: Any,
    env_id: str | None = None,
    *,
    episodes: int | None = None,
    seed: int = 0,
    deterministic: bool = False,
    references: bool = True,
) -> dict:
    """What ``plastic eval RUN [--greedy] --episodes N --seed S --json`` reports, for a loaded
    ``Policy`` or any object with sb3's ``predict`` (then ``env_id`` is required): the agent's
    reward (and regret) with 95% intervals, next to random, the reference policies and the
    oracle on the same episodes."""
    if isinstance(policy, Policy):
        target = environment(env_id) if env_id is not None else policy._agent.env
    elif env_id is None:
        raise TypeError("evaluate(policy, env_id): name the environment for a policy not loaded by plastic")
    else:
        target = environment(env_id)
    if episodes is None:
        episodes = target.default_eval_episodes()
    if isinstance(policy, Policy):
        stats = json.loads(policy._agent.evaluate(episodes, seed, deterministic, target))
    else:
        stats = json.loads(
            _native.rollout(target, policy, episodes, seed, min(episodes, _native.EVAL_BATCH), deterministic)
        )

    rows = [{"policy": "agent (greedy)" if deterministic else "agent", **stats}]
    if references:
        rows += [{"policy": name, **json.loads(s)} for name, s in target.reference_stats(episodes, seed)]
    oracle = _oracle_stats(target, episodes, seed)
    if references and oracle is not None:
        rows.append({"policy": "oracle", **oracle})
    loaded = isinstance(policy, Policy)
    return _report(
        target,
        seed,
        episodes,
        rows,
        oracle,
        checkpoint=policy.checkpoint if loaded else None,
        env_steps_trained=policy.env_steps if loaded else None,
    )
