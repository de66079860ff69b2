"""Callbacks for :meth:`plastic.Trainer.learn`, in Stable-Baselines3's shape.

plastic trains in Rust and hands control to Python once per update (``a2c.rollout_len`` steps
of every environment, then one gradient step), never per environment step: ``on_step`` and
``on_rollout_end`` are both called after each update, ``on_rollout_end`` first. ``on_step``
returning False stops training there, with a checkpoint, as Ctrl-C does.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .trainer import Trainer


class BaseCallback:
    """Override ``_on_step`` (and the other ``_on_*`` hooks). ``self.locals`` holds what the
    update reports: ``updates``, ``total_updates``, ``env_steps``, ``episodes``,
    ``mean_return`` (recent episodes, None before the first ends) and ``evaluation`` (a dict
    with ``mean_reward``, ``ci95`` and ``episodes`` when the update ran the held-out evaluation,
    else None)."""

    def __init__(self, verbose: int = 0):
        self.verbose = verbose
        self.trainer: Trainer | None = None
        self.parent: BaseCallback | None = None
        self.n_calls = 0
        self.num_timesteps = 0
        self.locals: dict[str, Any] = {}

    def config_overrides(self) -> dict[str, Any]:
        """Config keys (``section.key`` -> value) the callback needs for a new run."""
        return {}

    def init_callback(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self._init_callback()

    def on_training_start(self) -> None:
        self._on_training_start()

    def update_locals(self, info: dict[str, Any]) -> None:
        self.locals = info
        self.num_timesteps = info["env_steps"]

    def on_rollout_end(self) -> None:
        self._on_rollout_end()

    def on_step(self) -> bool:
        self.n_calls += 1
        return bool(self._on_step())

    def on_training_end(self) -> None:
        self._on_training_end()

    def _init_callback(self) -> None:
        pass

    def _on_training_start(self) -> None:
        pass

    def _on_rollout_end(self) -> None:
        pass

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        pass


class CallbackList(BaseCallback):
    """Several callbacks in order; training stops when any ``on_step`` returns False."""

    def __init__(self, callbacks: list[BaseCallback]):
        super().__init__()
        self.callbacks = list(callbacks)

    def config_overrides(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for c in self.callbacks:
            merged.update(c.config_overrides())
        return merged

    def _init_callback(self) -> None:
        for c in self.callbacks:
            c.init_callback(self.trainer)

    def _on_training_start(self) -> None:
        for c in self.callbacks:
            c.on_training_start()

    def update_locals(self, info: dict[str, Any]) -> None:
        super().update_locals(info)
        for c in self.callbacks:
            c.update_locals(info)

    def _on_rollout_end(self) -> None:
        for c in self.callbacks:
            c.on_rollout_end()

    def _on_step(self) -> bool:
        go_on = True
        for c in self.callbacks:
            # Every callback sees every update, even after one asked to stop.
            go_on = c.on_step() and go_on
        return go_on

    def _on_training_end(self) -> None:
        for c in self.callbacks:
            c.on_training_end()


def _copy_checkpoint(source: Path, dest: Path) -> None:
    """A checkpoint folder copied whole to `dest` (replaced if there), which ``plastic.load``
    and ``plastic eval`` read like the original."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


class CheckpointCallback(BaseCallback):
    """Keeps a copy of the checkpoint every ``save_freq`` updates as
    ``<save_path>/<name_prefix>_<steps>_steps``. It sets ``log.checkpoint_every = save_freq``
    for a new run, so the copy is that update's own checkpoint."""

    def __init__(self, save_freq: int, save_path: str, name_prefix: str = "plastic_model", verbose: int = 0):
        super().__init__(verbose)
        if save_freq < 1:
            raise ValueError(f"save_freq = {save_freq}: a number of updates, at least 1")
        self.save_freq = save_freq
        self.save_path = Path(save_path)
        self.name_prefix = name_prefix

    def config_overrides(self) -> dict[str, Any]:
        return {"log.checkpoint_every": self.save_freq}

    def _on_step(self) -> bool:
        if self.locals["updates"] % self.save_freq == 0:
            newest = self.trainer.newest_checkpoint()
            if newest is not None:
                dest = self.save_path / f"{self.name_prefix}_{self.num_timesteps}_steps"
                self.save_path.mkdir(parents=True, exist_ok=True)
                _copy_checkpoint(newest, dest)
                if self.verbose:
                    print(f"saved checkpoint {dest}")
        return True


class EvalCallback(BaseCallback):
    """Held-out evaluation during training by the run's own evaluation (``log.eval_*``, as
    ``plastic train`` does it: the training environment with held-out seeds, results in
    TensorBoard and ``evaluations.csv``): every ``eval_freq`` updates, ``n_eval_episodes``
    episodes. A new best mean reward is saved as the run's ``best`` checkpoint (and copied to
    ``best_model_save_path`` when given), then ``callback_on_new_best`` runs; its False stops
    training."""

    def __init__(
        self,
        eval_freq: int = 10,
        n_eval_episodes: int | None = None,
        best_model_save_path: str | None = None,
        callback_on_new_best: BaseCallback | None = None,
        deterministic: bool | None = None,
        verbose: int = 1,
    ):
        super().__init__(verbose)
        if eval_freq < 1:
            raise ValueError(f"eval_freq = {eval_freq}: a number of updates, at least 1")
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.best_model_save_path = None if best_model_save_path is None else Path(best_model_save_path)
        self.callback_on_new_best = callback_on_new_best
        if callback_on_new_best is not None:
            callback_on_new_best.parent = self
        self.deterministic = deterministic
        self.best_mean_reward = float("-inf")
        self.last_mean_reward = float("-inf")
        self.evaluations: list[tuple[int, float]] = []

    def config_overrides(self) -> dict[str, Any]:
        keys: dict[str, Any] = {"log.eval_every": self.eval_freq, "log.keep_best": True}
        if self.n_eval_episodes is not None:
            keys["log.eval_episodes"] = self.n_eval_episodes
        if self.deterministic is not None:
            keys["log.eval_greedy"] = self.deterministic
        return keys

    def _init_callback(self) -> None:
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.init_callback(self.trainer)

    def update_locals(self, info: dict[str, Any]) -> None:
        super().update_locals(info)
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.update_locals(info)

    def _on_step(self) -> bool:
        evaluation = self.locals["evaluation"]
        if evaluation is None:
            return True
        self.last_mean_reward = evaluation["mean_reward"]
        self.evaluations.append((self.num_timesteps, self.last_mean_reward))
        if self.last_mean_reward <= self.best_mean_reward:
            return True
        self.best_mean_reward = self.last_mean_reward
        if self.best_model_save_path is not None:
            _copy_checkpoint(self.trainer.run / "best", self.best_model_save_path)
        if self.callback_on_new_best is None:
            return True
        return self.callback_on_new_best.on_step()


class StopTrainingOnRewardThreshold(BaseCallback):
    """For ``EvalCallback(callback_on_new_best=...)``: stops training once the held-out mean
    reward reaches ``reward_threshold``."""

    def __init__(self, reward_threshold: float, verbose: int = 0):
        super().__init__(verbose)
        self.reward_threshold = reward_threshold

    def _on_step(self) -> bool:
        if self.parent is None:
            raise ValueError("StopTrainingOnRewardThreshold is for EvalCallback(callback_on_new_best=...)")
        reached = self.parent.best_mean_reward >= self.reward_threshold
        if reached and self.verbose:
            print(f"stopping: held-out mean reward {self.parent.best_mean_reward:.3f} >= {self.reward_threshold}")
        return not reached
