"""The STPN authors' own layer on fixed weights and inputs: a test fixture for `kind = "stpn"`.

Runs `NetParallelEnergy(rnn_type="stpn")` from a checkout of NeuromorphicComputing/STPN (the
network their maze script `Maze/Scripts/maze_nets.py` builds: their `STPNr` layer, tanh, then
the fast-weight update) with the `stp` settings of their maze config
`Maze/config/STPN_Maze_h55.json`, in float64, on B 2, in 3, H 4 for 5 steps. λ and γ are drawn
wider than their initialisation (γ ~ U(±3) rather than ±0.001/√H) so that the clamp and the
normalisation both matter within 5 steps (`clamped` counts, per step, the fast weights that
λ ⊙ F + γ ⊙ (h ⊗ z) took past ±clip). Writes the weights, the inputs, and per step the
outputs h_t and the fast weights F_t as JSON; `agents/tests/stpn_reference.rs` loads the same
weights into plastic's core and checks both to 1e-12. Their code is imported from the
checkout, never copied into this repository.

    git clone https://github.com/NeuromorphicComputing/STPN /tmp/stpn/STPN
    scripts/with-env.sh python scripts/stpn_reference.py /tmp/stpn/STPN \\
        > agents/tests/fixtures/stpn_reference.json
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

B, IN, H, STEPS = 2, 3, 4, 5
CONFIG = "Maze/config/STPN_Maze_h55.json"
COMMAND = (
    "scripts/with-env.sh python scripts/stpn_reference.py /tmp/stpn/STPN > agents/tests/fixtures/stpn_reference.json"
)


def import_their_net(checkout: Path):
    """Their modules import themselves as `STPN.Scripts...`: put a folder named STPN on the path."""
    if checkout.name != "STPN":
        link_dir = Path(tempfile.mkdtemp())
        os.symlink(checkout, link_dir / "STPN")
        sys.path.insert(0, str(link_dir))
    else:
        sys.path.insert(0, str(checkout.parent))
    from STPN.Scripts.Nets import NetParallelEnergy

    return NetParallelEnergy


def their_commit(checkout: Path) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a checkout of NeuromorphicComputing/STPN")
    parser.add_argument("--commit", help="the checkout's commit, where it is not a git checkout")
    args = parser.parse_args()
    checkout = args.checkout.resolve()
    NetParallelEnergy = import_their_net(checkout)
    stp = json.loads((checkout / CONFIG).read_text())["stp"]

    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    # Their constructor prints notes on stdout, which the fixture goes to.
    with contextlib.redirect_stdout(sys.stderr):
        net = NetParallelEnergy(IN, H, stp=stp, rnn_type="stpn", eval_energy=False)
    layer = net.rnn
    with torch.no_grad():
        layer.weight.uniform_(-1.0, 1.0)  # [H × (in + H)]: inputs first, then hidden
        layer.bias.uniform_(-1.0, 1.0)
        layer.weight_lambda.uniform_(0.0, 1.0)
        layer.weight_gamma.uniform_(-3.0, 3.0)
    xs = torch.rand(STEPS, B, IN) * 4.0 - 2.0

    states = layer.states_init(batch_size=B, device=torch.device("cpu"))
    hs, fasts, clamped = [], [], []
    clip = stp["plastic_weight_clamp_val"]
    with torch.no_grad():
        for x in xs:
            z = torch.cat((x, states[0][0]), dim=1)
            f_prev = states[-1][0]
            h, states = net(x=x, states=states)
            unclamped = layer.weight_lambda * f_prev + layer.weight_gamma * torch.einsum("bf,bh->bhf", z, h)
            clamped.append(int((unclamped.abs() > clip).sum()))
            hs.append(h.tolist())
            fasts.append(states[-1][0].tolist())

    print(
        json.dumps(
            {
                "about": (
                    "The STPN authors' NetParallelEnergy(rnn_type='stpn') with the stp settings of "
                    f"{CONFIG}, float64; weights, inputs, and per step h_t [B x H] and the fast "
                    "weights F_t [B x H x (in + H)]. Produced by: " + COMMAND
                ),
                "their_commit": args.commit or their_commit(checkout),
                "torch": torch.__version__,
                "batch": B,
                "input": IN,
                "hidden": H,
                "clip": clip,
                "clamped": clamped,
                "weight": layer.weight.tolist(),
                "bias": layer.bias.tolist(),
                "lambda": layer.weight_lambda.tolist(),
                "gamma": layer.weight_gamma.tolist(),
                "xs": xs.tolist(),
                "h": hs,
                "fast": fasts,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
