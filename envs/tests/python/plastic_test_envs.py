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


class Countdown(gym.Env):
    """Ends (terminated) after `steps` steps, whatever the actions; its frame is one colour per
    step, red rising with the step: a test reads which step a frame shows."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    observation_space = Box(0.0, 1.0, (1,), np.float32)
    action_space = Discrete(2)

    def __init__(self, steps=5, render_mode=None):
        self.steps = steps
        self.render_mode = render_mode
        self.t = 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t / self.steps], np.float32), 1.0, self.t == self.steps, False, {}

    def render(self):
        return np.full((16, 24, 3), [40 * self.t, 0, 255 - 40 * self.t], np.uint8)


gym.register("plastic_test/Countdown-v0", entry_point=Countdown, max_episode_steps=100)
gym.register("plastic_test/Raising-v0", entry_point=Raising, max_episode_steps=1000)
gym.register("plastic_test/NanReward-v0", entry_point=NanReward, max_episode_steps=1000)
