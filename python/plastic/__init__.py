"""plastic: plastic recurrent policies (differentiable plasticity, Backpropamine) and their
environments, from Python.

    import plastic
    policy = plastic.load("runs/maze-small_1")          # a run folder or a checkpoint folder
    env = plastic.make_vec("maze:size=9,len=100", 32)  # a gymnasium.vector.VectorEnv
    obs, _ = env.reset(seed=0)
    actions, state = policy.predict(obs)                # sb3-contrib RecurrentPPO's contract
    state.hebb                                          # the Hebbian traces, [32, H, H]

    trainer = plastic.Trainer("maze:size=9,len=100", "configs/maze-small.toml")
    trainer.learn(30_000)                               # the run `plastic train` writes

Every environment family is also a Gymnasium id once the package is imported
(``gymnasium.make("plastic/Maze-v0", size=9)``; ``"plastic:plastic/Maze-v0"`` imports it).
"""

from importlib import metadata as _metadata

#: The torch release whose libtorch the extension was built against (scripts/setup.sh pins it).
TORCH_VERSION = "2.11.0"


def _release(version: str) -> str:
    """``2.11.0+cu130`` -> ``2.11.0``."""
    return version.split("+", 1)[0]


def _check_torch() -> None:
    try:
        installed = _metadata.version("torch")
    except _metadata.PackageNotFoundError:
        raise ImportError(
            f"plastic needs torch=={TORCH_VERSION} (it runs on that torch's libtorch), and torch "
            f"is not installed in this environment: pip install torch=={TORCH_VERSION}"
        ) from None
    if _release(installed) != TORCH_VERSION:
        raise ImportError(
            f"plastic was built against torch {TORCH_VERSION} and this environment has torch "
            f"{installed}. The extension runs on the libtorch of the torch installed next to it, "
            f"whose binary interface changes between releases: install torch=={TORCH_VERSION} "
            f"here, or build plastic against this torch (see docs/python.md)."
        )


_check_torch()

# The extension links libtorch without a search path of its own: importing torch first loads
# this environment's libtorch, which the extension then uses.
import torch as _torch

if _release(_torch.__version__) != TORCH_VERSION:  # the metadata and the module disagree
    raise ImportError(f"plastic needs torch {TORCH_VERSION}; `import torch` gave {_torch.__version__}")

try:
    from . import _native
except ImportError as e:
    raise ImportError(
        f"plastic's extension module (plastic._native) did not load from {__path__[0]}: {e}. "
        "If that is the source folder (python/plastic), Python found it before the installed "
        "package: run from another folder, or build and install it (make build)."
    ) from e

if _release(_native.TORCH_BUILD_VERSION) != TORCH_VERSION:
    raise ImportError(
        f"this build of plastic's extension links torch {_native.TORCH_BUILD_VERSION}, and the "
        f"package says {TORCH_VERSION}: rebuild it (make build)"
    )

from . import callbacks
from ._native import (
    CheckpointError,
    ConfigError,
    EnvError,
    Environment,
    TrainingError,
)
from .envs import (
    PlasticEnv,
    PlasticVectorEnv,
    environment,
    families,
    gym_id,
    make,
    make_vec,
    register_envs,
)
from .policy import (
    Policy,
    ReferencePolicy,
    State,
    evaluate,
    load,
    reference_policy,
    rollout,
)
from .trainer import Trainer

__version__ = _native.VERSION

register_envs()

__all__ = [
    "TORCH_VERSION",
    "CheckpointError",
    "ConfigError",
    "EnvError",
    "Environment",
    "PlasticEnv",
    "PlasticVectorEnv",
    "Policy",
    "ReferencePolicy",
    "State",
    "Trainer",
    "TrainingError",
    "callbacks",
    "environment",
    "evaluate",
    "families",
    "gym_id",
    "load",
    "make",
    "make_vec",
    "reference_policy",
    "register_envs",
    "rollout",
]
