"""Training from Python: :class:`Trainer`, in Stable-Baselines3's shape, over the CLI's own
training loop, so a run trained here is the run ``plastic train`` writes (same numbers, same
folder: ``plastic eval``, ``resume`` and ``compare`` read it)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium

from . import _native
from .callbacks import BaseCallback, CallbackList
from .policy import Policy, load

#: The file name errors show for a config given as a dict or keywords rather than a file.
_NO_FILE = "<Trainer arguments>"


def _toml_value(key: str, value: Any) -> str:
    """A Python value as the TOML of a ``--set key=value`` override."""
    if isinstance(value, (bool, int, float, str)) or (
        isinstance(value, list) and all(isinstance(v, (bool, int, float, str)) for v in value)
    ):
        return json.dumps(value)
    raise TypeError(f"config key `{key}`: {value!r} is not a number, string, bool or list of them")


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """``{"optim": {"lr": 1e-3}}`` -> ``{"optim.lr": 1e-3}``; dotted keys stay as they are."""
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def _flat(keys: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    _flatten("", keys, flat)
    return flat


def _overrides(keys: dict[str, Any]) -> list[str]:
    return [f"{key}={_toml_value(key, value)}" for key, value in _flat(keys).items()]


def _env_factory(env: Any) -> tuple[Callable[[], gymnasium.Env], int | None]:
    """A callable making one environment like `env`, and the number of copies `env` stands
    for (a vector env's; None for one environment or a callable)."""
    if isinstance(env, gymnasium.vector.VectorEnv):
        envs = getattr(env, "envs", None)
        if not envs:
            raise TypeError(
                f"{type(env).__name__} does not expose its environments (`.envs`); plastic steps "
                "its own synchronous vector env: pass a gymnasium.Env or a callable making one"
            )
        template = envs[0]
        return _copies_of(template), env.num_envs
    if isinstance(env, gymnasium.Env):
        return _copies_of(env), None
    if callable(env):
        return env, None
    raise TypeError(
        f"env {env!r}: expected an environment id (str), a gymnasium.Env, a "
        "gymnasium.vector.VectorEnv or a callable making a gymnasium.Env"
    )


def _copies_of(env: gymnasium.Env) -> Callable[[], gymnasium.Env]:
    """Training, evaluation and each of ``env.num_envs`` need their own environment: deep
    copies of `env`, checked once here so a failure names the cause at once."""
    try:
        copy.deepcopy(env)
    except Exception as e:
        raise TypeError(
            f"plastic makes its environments as copies of the one given, and "
            f"copy.deepcopy({type(env).__name__}) fails: {e}; pass a callable that makes one instead"
        ) from e
    return lambda: copy.deepcopy(env)


def _recorded_id(env: Any, factory: Callable[[], gymnasium.Env]) -> str:
    """The id a run on an environment object records, which ``plastic eval`` rebuilds:
    ``gym:<spec id>`` for an environment Gymnasium made, else the class's import path."""
    made = env if isinstance(env, gymnasium.Env) else factory()
    try:
        spec = made.spec
        if spec is not None:
            return f"gym:{spec.id}"
        inner = made.unwrapped
        return f"gym:{type(inner).__module__}:{type(inner).__qualname__}"
    finally:
        if made is not env:
            made.close()


class Trainer:
    """Trains a plastic recurrent policy with the CLI's A2C (or PPO, ``[ppo]``) loop.

    ``config``: a TOML file, a dict (sections or dotted keys), or nothing (the starting
    defaults, as ``plastic train --env``; so does a dict or keywords naming no section but
    ``env`` and ``run``, while one naming another section starts from the built-in defaults,
    as a file does: docs/cli.md); ``seed``, ``device``, ``threads`` and section keywords (``optim={"lr": 1e-3}``)
    override it, checked by the same code as ``plastic train --set``. ``env``: a native or
    ``gym:`` id, a ``gymnasium.Env`` (deep-copied for each environment), a synchronous
    ``gymnasium.vector.VectorEnv`` (its ``num_envs`` copies of its first environment), or a
    callable making a ``gymnasium.Env``; with an object, ``env_id`` names the id the run
    records for ``plastic eval`` (default: ``gym:<its spec id>``). ``out``: the run folder
    (default ``runs/<run.name>_<n>``, as the CLI)."""

    def __init__(
        self,
        env: Any = None,
        config: str | os.PathLike | dict[str, Any] | None = None,
        *,
        seed: int | None = None,
        device: str | None = None,
        threads: int | None = None,
        out: str | os.PathLike | None = None,
        env_id: str | None = None,
        **sections: Any,
    ):
        if isinstance(config, (str, os.PathLike)):
            self._path = str(config)
            try:
                self._text = Path(config).read_text()
            except OSError as e:
                raise FileNotFoundError(f"cannot read config `{config}`: {e.strerror}") from None
            keys: dict[str, Any] = dict(sections)
            # Keywords on a file change its keys, as `--set` does: the file's sections choose
            # the defaults.
            self._named: list[str] = []
        elif isinstance(config, dict) or config is None:
            self._path = _NO_FILE
            # The one key without a default, filled by the env or the dict below.
            self._text = '[env]\nid = "maze"\n'
            keys = dict(config or {})
            keys.update(sections)
            # The dict is the config: the sections it names choose the defaults as a file's do
            # (none but `env` and `run`: the starting defaults, as `plastic train --env`).
            self._named = sorted({key.split(".")[0] for key in _flat(keys)})
        else:
            raise TypeError(f"config {config!r}: expected a TOML file's path, a dict or None")
        if isinstance(env, str):
            keys["env.id"] = env
        elif env is not None:
            factory, copies = _env_factory(env)
            recorded = env_id or _recorded_id(env, factory)
            if not recorded.startswith("gym:"):
                raise ValueError(f"env_id {recorded!r}: an environment object records a `gym:` id")
            _native.register_env_object(recorded[len("gym:") :], factory)
            keys["env.id"] = recorded
            if copies is not None:
                keys["env.num_envs"] = copies
        for key, value in (("run.seed", seed), ("run.device", device), ("run.threads", threads)):
            if value is not None:
                keys[key] = value
        self._overrides = _overrides(keys)
        self.config = _native.resolve_config(self._text, self._path, self._overrides, self._named)
        self._out = None if out is None else Path(out)
        self.run: Path | None = None
        self._policy: Policy | None = None

    @classmethod
    def load(cls, path: str | os.PathLike, env: Any = None, env_id: str | None = None) -> Trainer:
        """A trainer that goes on with the run in `path` (``learn`` resumes it as ``plastic
        resume`` does). Give the environment object again if the run trained on one."""
        run = Path(path)
        config = run / "config.toml"
        if not config.is_file():
            raise FileNotFoundError(f"`{run}` holds no run (no config.toml): give a run folder")
        if env is not None and env_id is None:
            # The object stands for the id the run recorded.
            env_id = tomllib.loads(config.read_text())["env"]["id"]
        trainer = cls(env, config, env_id=env_id)
        trainer.run = run
        return trainer

    def learn(self, total_timesteps: int, callback: Any = None, progress_bar: bool = False) -> Trainer:
        """Trains for `total_timesteps` more environment steps (whole updates: the last may go
        past). ``callback``: a :class:`~plastic.callbacks.BaseCallback`, a list of them, or a
        function ``f(locals_dict) -> bool``, called once per update. Ctrl-C saves a checkpoint
        and raises KeyboardInterrupt; an exception raised by an environment or a callback is
        raised here, and the run resumes from its newest checkpoint. The console shows the
        CLI's progress (a bar on a terminal, lines otherwise) whatever ``progress_bar`` says."""
        del progress_bar  # accepted for Stable-Baselines3's signature; see the docstring
        if total_timesteps < 1:
            raise ValueError(f"total_timesteps = {total_timesteps}: at least 1")
        callback = _as_callback(callback)
        after_update = None
        if callback is not None:
            after_update = _after_update(callback)

        def run_folder(path: str) -> None:
            self.run = Path(path)
            if callback is not None:
                callback.init_callback(self)
                callback.on_training_start()

        try:
            if self.run is None:
                extra = callback.config_overrides() if callback is not None else {}
                extra["run.total_steps"] = total_timesteps
                out = None if self._out is None else str(self._out)
                _native.train_run(
                    self._text,
                    self._path,
                    self._overrides + _overrides(extra),
                    self._named,
                    out,
                    run_folder,
                    after_update,
                )
            else:
                trained = self.num_timesteps
                _native.resume_run(str(self.run), trained + total_timesteps, run_folder, after_update)
        finally:
            # The newest checkpoint is another now.
            self._policy = None
            if callback is not None and self.run is not None:
                callback.on_training_end()
        return self

    @property
    def num_timesteps(self) -> int:
        """Environment steps trained so far (0 before the first checkpoint)."""
        return 0 if self.newest_checkpoint() is None else self.policy.env_steps

    def newest_checkpoint(self) -> Path | None:
        """The run's newest checkpoint folder, if it has one."""
        if self.run is None:
            return None
        folder = self.run / "checkpoints"
        updates = sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []
        return folder / f"{updates[-1]:08}" if updates else None

    @property
    def policy(self) -> Policy:
        """The trained policy (the run's newest checkpoint)."""
        if self.run is None:
            raise RuntimeError("nothing trained yet: call learn() first, or Trainer.load(run)")
        if self._policy is None:
            self._policy = load(self.run)
        return self._policy

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        """:meth:`plastic.Policy.predict` of the trained policy."""
        return self.policy.predict(observation, state, episode_start, deterministic)

    def get_parameters(self):
        """The trained parameters, name -> numpy array."""
        return self.policy.parameters()

    def save(self, path: str | os.PathLike) -> Path:
        """Copies the run folder to `path` (a new folder): a run the CLI reads."""
        if self.run is None:
            raise RuntimeError("nothing trained yet: call learn() first")
        dest = Path(path)
        if dest.resolve() != self.run.resolve():
            if dest.exists():
                raise FileExistsError(f"`{dest}` exists; save into a new folder")
            shutil.copytree(self.run, dest, ignore=shutil.ignore_patterns(".lock"))
        return dest


def _as_callback(callback: Any) -> BaseCallback | None:
    if callback is None or isinstance(callback, BaseCallback):
        return callback
    if isinstance(callback, list):
        return CallbackList(callback)
    if callable(callback):
        return _FunctionCallback(callback)
    raise TypeError(f"callback {callback!r}: expected a BaseCallback, a list of them or a function")


class _FunctionCallback(BaseCallback):
    """A plain function ``f(locals_dict) -> bool`` as a callback (None counts as True)."""

    def __init__(self, function: Callable[[dict[str, Any]], Any]):
        super().__init__()
        self.function = function

    def _on_step(self) -> bool:
        return self.function(self.locals) is not False


def _after_update(callback: BaseCallback) -> Callable[[dict[str, Any]], bool]:
    def after_update(info: dict[str, Any]) -> bool:
        callback.update_locals(info)
        callback.on_rollout_end()
        return callback.on_step()

    return after_update
