"""A 20-pull two-armed bandit written in Python, as a user would write one: a meta-learning
task whose arms are drawn anew each episode, so an agent must find the paying arm within the
episode. One arm pays 1 with probability 0.9, the other with 0.1; which is which is a coin
flip per episode. The observation is the previous pull (one-hot) and its reward, zeros at the
first pull. Random pulls get 10 per episode, an agent told the paying arm 18.

Train on it from the folder holding this file (found as ``python -m`` finds modules):

    cd python/examples && plastic train --env gym:two_armed_bandit:TwoArmedBandit-v0
"""

import gymnasium
import numpy as np

PULLS = 20


class TwoArmedBandit(gymnasium.Env):
    observation_space = gymnasium.spaces.Box(0.0, 1.0, (3,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.good_arm = int(self.np_random.integers(2))
        return np.zeros(3, np.float32), {}

    def step(self, action):
        paid = self.np_random.random() < (0.9 if action == self.good_arm else 0.1)
        observation = np.zeros(3, np.float32)
        observation[action] = 1.0
        observation[2] = float(paid)
        return observation, float(paid), False, False, {}


gymnasium.register("TwoArmedBandit-v0", entry_point=__name__ + ":TwoArmedBandit", max_episode_steps=PULLS)
