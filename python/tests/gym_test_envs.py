"""Gymnasium environments the package's tests train on and Gymnasium does not ship. The CLI
imports this module as `gym:gym_test_envs:<id>` with this folder on PYTHONPATH."""

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box, Discrete


class Lamp(gym.Env):
    """Random uint8 frames of 6 × 6 pixels, 3 channels, `(H, W, C)` or with
    `channels_first=True` `(C, H, W)`; action 1 pays 1 when the right half of the frame is
    brighter than the left, action 0 when it is not. Every pixel counts, so the actions of a
    policy follow the whole frame."""

    action_space = Discrete(2)

    def __init__(self, channels_first=False):
        self.channels_first = channels_first
        shape = (3, 6, 6) if channels_first else (6, 6, 3)
        self.observation_space = Box(0, 255, shape, np.uint8)

    def _show(self):
        self.frame = self.np_random.integers(0, 256, self.observation_space.shape, dtype=np.uint8)
        return self.frame

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self._show(), {}

    def step(self, action):
        width_axis = 2 if self.channels_first else 1
        left, right = np.split(self.frame.astype(np.int64), 2, axis=width_axis)
        reward = float(int(action) == int(right.sum() > left.sum()))
        return self._show(), reward, False, False, {}


gym.register("plastic_test/Lamp-v0", entry_point=Lamp, max_episode_steps=8)


class ShiftedDial(gym.Env):
    """A target drawn from `Discrete(3, start=-1)`'s values {-1, 0, 1}, shown one-hot; the
    action equal to it pays 1. The action space starts at -1, so an agent's 0-based index
    given as an action is wrong (one too high) or outside the space, which `step` refuses."""

    action_space = Discrete(3, start=-1)
    observation_space = Box(0.0, 1.0, (3,), np.float32)

    def _show(self):
        self.target = int(self.np_random.integers(-1, 2))
        obs = np.zeros(3, np.float32)
        obs[self.target + 1] = 1.0
        return obs

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self._show(), {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        reward = float(int(action) == self.target)
        return self._show(), reward, False, False, {}


gym.register("plastic_test/ShiftedDial-v0", entry_point=ShiftedDial, max_episode_steps=8)
