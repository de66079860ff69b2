"""Gymnasium environments the bridge's tests need and Gymnasium does not ship."""

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box, Discrete


class Raising(gym.Env):
    """Steps quietly on action 0; raises on action 1, as a buggy user environment would."""

    observation_space = Box(-1.0, 1.0, (3,), np.float32)
    action_space = Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        if action == 1:
            raise RuntimeError("the reactor overheated")
        return np.zeros(3, np.float32), 0.0, False, False, {}


gym.register("plastic_test/Raising-v0", entry_point=Raising, max_episode_steps=1000)


class NanReward(gym.Env):
    """Pays NaN on action 1, as an environment with a numerical bug would."""

    observation_space = Box(-1.0, 1.0, (3,), np.float32)
    action_space = Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        reward = float("nan") if action == 1 else 0.0
        return np.zeros(3, np.float32), reward, False, False, {}


gym.register("plastic_test/NanReward-v0", entry_point=NanReward, max_episode_steps=1000)
