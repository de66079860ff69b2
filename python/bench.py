"""Speed of the Python package (docs/python.md, "Speed"): environment steps per second of
``plastic.make_vec("maze", B)`` driven from Python with random numpy actions, and ``predict``
calls per second of a Backpropamine agent (configs/maze-backpropamine-simple.toml's core:
plastic RNN, H 100, simple neuromodulation) next to the same network's step written in PyTorch.

    scripts/with-env.sh python python/bench.py            # trains the tiny agent it times first
    scripts/with-env.sh python python/bench.py --run RUN  # or times a trained one
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The installed package, not its source folder next to this script.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np
import plastic
import torch

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 32, 1024)


def timed(*fns, seconds, rounds=5):
    """Calls per second of each of fns: warm up, then rounds of as many calls as fit in
    `seconds`, the functions in alternation (the machine is shared: noise hits each alike);
    the median round of each."""
    for fn in fns:
        for _ in range(3):
            fn()
    rates = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, rates):
            calls, start = 0, time.perf_counter()
            while True:
                for _ in range(10):
                    fn()
                calls += 10
                elapsed = time.perf_counter() - start
                if elapsed >= seconds:
                    break
            out.append(calls / elapsed)
    return [statistics.median(r) for r in rates]


def bench_env(seconds):
    print("plastic.make_vec('maze', B): env-steps/s with random numpy actions (int64)")
    for b in BATCHES:
        steps = []
        for copy in (False, True):
            env = plastic.make_vec("maze", b, copy=copy)
            env.reset(seed=0)
            actions = np.random.default_rng(0).integers(0, 4, size=(4096, b))
            i = iter(range(10**12))

            def step(env=env, actions=actions, i=i):
                env.step(actions[next(i) % 4096])

            steps.append(step)
        row = [rate * b for rate in timed(*steps, seconds=seconds)]
        print(f"  B {b:5d}: {row[0]:14,.0f} (copy=False)  {row[1]:14,.0f} (copy=True, the default)")


class TorchBackpropamine:
    """The same actor-critic step in PyTorch, from the agent's own weights (plastic RNN, α per
    connection, Hebbian rule clipped at ±1, simple neuromodulation, scalar modulator)."""

    def __init__(self, policy):
        p = {k: torch.from_numpy(v) for k, v in policy.parameters().items()}
        self.w_in, self.b, self.w = p["ac.core.w_in"], p["ac.core.b"], p["ac.core.w"]
        self.alpha, self.mod_w, self.mod_b = p["ac.core.alpha"], p["ac.core.mod_w"], p["ac.core.mod_b"]
        self.pw, self.pb = p["ac.policy.weight"], p["ac.policy.bias"]
        self.vw, self.vb = p["ac.value.weight"], p["ac.value.bias"]

    @torch.no_grad()
    def step(self, x, h, hebb):
        plastic_in = (hebb * self.alpha * h.unsqueeze(1)).sum(2)
        h_new = torch.tanh(torch.nn.functional.linear(x, self.w_in, self.b) + h @ self.w.T + plastic_in)
        m = torch.tanh(torch.nn.functional.linear(h_new, self.mod_w, self.mod_b))
        hebb = torch.clamp(hebb + m.unsqueeze(2) * h_new.unsqueeze(2) * h.unsqueeze(1), -1.0, 1.0)
        logits = torch.nn.functional.linear(h_new, self.pw, self.pb)
        value = torch.nn.functional.linear(h_new, self.vw, self.vb)
        return logits, value, h_new, hebb

    def predict(self, obs, state, deterministic=True):
        """Numpy in and out, as predict: observations to a tensor, one step, the most probable
        actions back to numpy."""
        h, hebb = state
        logits, _, h, hebb = self.step(torch.from_numpy(obs), h, hebb)
        actions = logits.softmax(-1).argmax(-1).numpy()
        return actions, (h, hebb)


def train_agent(out):
    subprocess.run(
        [
            str(ROOT / "target" / "release" / "plastic"),
            "train",
            str(ROOT / "configs" / "maze-backpropamine-simple.toml"),
            "--set",
            "run.total_steps=6000",
            "--set",
            "run.device=cpu",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out


def bench_policy(run, seconds):
    policy = plastic.load(run)
    torch_net = TorchBackpropamine(policy)
    h_size = policy.hidden_size
    print(
        f"predict of {run} (plastic RNN, H {h_size}, simple neuromodulation), greedy, "
        f"{torch.get_num_threads()} libtorch threads; calls/s (rows/s)"
    )
    rng = np.random.default_rng(0)
    for b in BATCHES:
        obs = rng.random((b, policy.observation_space.shape[0]), dtype=np.float32)
        # Same numbers first: the PyTorch step is the same network.
        actions, state = policy.predict(obs, deterministic=True)
        t_actions, (t_h, t_hebb) = torch_net.predict(obs, (torch.zeros(b, h_size), torch.zeros(b, h_size, h_size)))
        assert np.array_equal(actions, t_actions)
        np.testing.assert_allclose(state.hebb, t_hebb.numpy(), atol=1e-6)

        holder = {"state": state}

        # The closures run within this iteration; the defaults bind its values all the same.
        def ours(obs=obs, holder=holder):
            _, holder["state"] = policy.predict(obs, holder["state"], deterministic=True)

        t_state = {"s": (t_h, t_hebb)}

        def theirs(obs=obs, t_state=t_state):
            _, t_state["s"] = torch_net.predict(obs, t_state["s"])

        x = torch.from_numpy(obs)

        def theirs_tensors(x=x, t_state=t_state):
            _, _, h, hebb = torch_net.step(x, *t_state["s"])
            t_state["s"] = (h, hebb)

        a, p, q = timed(ours, theirs, theirs_tensors, seconds=seconds)
        print(
            f"  B {b:5d}: plastic predict {a:9,.0f} ({a * b:12,.0f})   "
            f"PyTorch, numpy in/out {p:9,.0f} ({p * b:12,.0f})   "
            f"PyTorch, tensors only {q:9,.0f} ({q * b:12,.0f})"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a run folder with the Backpropamine core")
    parser.add_argument("--seconds", type=float, default=0.5, help="per round (5 rounds)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="libtorch threads (shared by both: one libtorch); 0 = libtorch's default",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bench_env(args.seconds)
    if args.run is not None:
        bench_policy(args.run, args.seconds)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            bench_policy(train_agent(Path(tmp) / "backpropamine"), args.seconds)


if __name__ == "__main__":
    main()
