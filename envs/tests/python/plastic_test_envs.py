"""Gymnasium environments the bridge's tests need and Gymnasium does not ship."""

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box, Dict, Discrete, MultiBinary, MultiDiscrete


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


class Echo(gym.Env):
    """A 2 × 2 Box action whose components have their own bounds; it shows (flattened) and
    pays (summed) the action it received, so a test reads what the bridge handed over."""

    observation_space = Box(-10.0, 10.0, (4,), np.float32)
    action_space = Box(np.array([[-1, 0], [-2, 0]], np.float32), np.array([[1, 1], [2, 3]], np.float32))

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(4, np.float32), {}

    def step(self, action):
        assert action.shape == (2, 2), action.shape
        return np.asarray(action, np.float32).reshape(4), float(action.sum()), False, False, {}


class Dial(gym.Env):
    """A MultiDiscrete action, 3 settings counted from 1 and 2 from 0; it shows (as floats) the
    action it received, so a test reads what the bridge handed over."""

    observation_space = Box(-10.0, 10.0, (2,), np.float32)
    action_space = MultiDiscrete([3, 2], start=[1, 0])

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action):
        assert action in self.action_space, action
        return np.asarray(action, np.float32), 0.0, False, False, {}


class Switches(Dial):
    """Three on/off switches (MultiBinary), shown as received."""

    observation_space = Box(0.0, 1.0, (3,), np.float32)
    action_space = MultiBinary(3)


class Knob(Dial):
    """A Discrete action counted from -1 (values -1, 0, 1), shown as received."""

    observation_space = Box(-10.0, 10.0, (1,), np.float32)
    action_space = Discrete(3, start=-1)

    def step(self, action):
        assert action in self.action_space, action
        return np.array([action], np.float32), 0.0, False, False, {}


class Unbounded(Echo):
    action_space = Box(-np.inf, np.inf, (2,), np.float32)


class Blank(gym.Env):
    """Shows `self.observation_space`'s zero observation whatever the action."""

    action_space = Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.blank(), {}

    def step(self, action):
        return self.blank(), 0.0, False, False, {}


class Pictures(Blank):
    """An image observation (rank 3), as pixel tasks have."""

    observation_space = Box(0, 255, (4, 4, 3), np.uint8)

    def blank(self):
        return np.zeros((4, 4, 3), np.uint8)


class Film(Blank):
    """A Box of rank 4 (a stack of colour frames): no encoder reads it."""

    observation_space = Box(0, 255, (2, 4, 4, 3), np.uint8)

    def blank(self):
        return np.zeros((2, 4, 4, 3), np.uint8)


class Dictionary(Blank):
    """A dictionary observation with an image, as MiniGrid's are."""

    observation_space = Dict({"image": Box(0, 255, (2, 2, 3), np.uint8), "direction": Discrete(4)})

    def blank(self):
        return {"image": np.zeros((2, 2, 3), np.uint8), "direction": 0}


class ImageOnly(gym.ObservationWrapper):
    """Keeps a dictionary observation's image, as MiniGrid's ImgObsWrapper does."""

    def __init__(self, env):
        super().__init__(env)
        self.observation_space = env.observation_space["image"]

    def observation(self, observation):
        return observation["image"]


class CueProbe(gym.Env):
    """MiniGrid's memory task in miniature, in its 7×7×3 view encoding: a key or a ball (the
    cue) in the first view, `delay` views of scattered walls, then a key and a ball one above
    the other until the agent picks a side (action 0 up, 1 down, 2 waits). The matching side
    pays 1: the reward depends on the cue and the order together, as at MiniGrid's split."""

    KEY, BALL, WALL, EMPTY = 5, 6, 2, 1
    observation_space = Box(0, 255, (7, 7, 3), np.uint8)
    action_space = Discrete(3)

    def __init__(self, delay=4):
        self.delay = delay

    def view(self):
        v = np.zeros((7, 7, 3), np.uint8)
        v[:, :, 0] = self.EMPTY
        walls = self.np_random.random((7, 7)) < 0.3
        v[walls] = (self.WALL, 5, 0)
        if self.t == 0:
            v[3, 3] = (self.cue, 1, 0)
        elif self.t > self.delay:
            v[3, 1] = (self.top, 1, 0)
            v[3, 5] = (self.KEY + self.BALL - self.top, 1, 0)
        return v

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.cue, self.top = (int(self.np_random.choice([self.KEY, self.BALL])) for _ in "ct")
        return self.view(), {}

    def step(self, action):
        self.t += 1
        if self.t > self.delay + 1 and action in (0, 1):
            reward = float((action == 0) == (self.top == self.cue))
            return self.view(), reward, True, False, {}
        return self.view(), 0.0, False, False, {}


gym.register("plastic_test/Echo-v0", entry_point=Echo, max_episode_steps=10)
gym.register("plastic_test/Unbounded-v0", entry_point=Unbounded, max_episode_steps=10)
gym.register("plastic_test/Dial-v0", entry_point=Dial, max_episode_steps=10)
gym.register("plastic_test/Switches-v0", entry_point=Switches, max_episode_steps=10)
gym.register("plastic_test/Knob-v0", entry_point=Knob, max_episode_steps=10)
gym.register("plastic_test/Pictures-v0", entry_point=Pictures, max_episode_steps=10)
gym.register("plastic_test/Film-v0", entry_point=Film, max_episode_steps=10)
gym.register("plastic_test/Dictionary-v0", entry_point=Dictionary, max_episode_steps=10)
gym.register("plastic_test/Countdown-v0", entry_point=Countdown, max_episode_steps=100)
gym.register("plastic_test/Raising-v0", entry_point=Raising, max_episode_steps=1000)
gym.register("plastic_test/NanReward-v0", entry_point=NanReward, max_episode_steps=1000)
gym.register("plastic_test/CueProbe-v0", entry_point=CueProbe, max_episode_steps=30)
