"""Gymnasium environments the bridge's tests need and Gymnasium does not ship."""

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box, Discrete


class Faulty(gym.Env):
    """A blank environment that behaves on action 0 and misbehaves (`fault`) on action 1."""

    observation_space = Box(-1.0, 1.0, (3,), np.float32)
    action_space = Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        reward = self.fault() if action == 1 else 0.0
        return np.zeros(3, np.float32), reward, False, False, {}


class Raising(Faulty):
    """Raises on action 1, as a buggy user environment would."""

    def fault(self):
        raise RuntimeError("the reactor overheated")


class NanReward(Faulty):
    """Pays NaN on action 1, as an environment with a numerical bug would."""

    def fault(self):
        return float("nan")


gym.register("plastic_test/Raising-v0", entry_point=Raising, max_episode_steps=1000)
gym.register("plastic_test/NanReward-v0", entry_point=NanReward, max_episode_steps=1000)
