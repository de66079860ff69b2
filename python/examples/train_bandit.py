"""Train a plastic agent on a meta-learning bandit from Python, across seeds, then evaluate
each run and compare the seeds, as docs/python.md's quick start does.

    scripts/with-env.sh python python/examples/train_bandit.py --steps 200000

Each seed's run folder is the one `plastic train` writes: watch them with
`tensorboard --logdir <out>`, evaluate one with `plastic eval <out>/seed0`, or compare them with
`plastic compare <out>/seed0 <out>/seed1`.
"""

import argparse
from pathlib import Path

import plastic
from plastic.callbacks import EvalCallback

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "bandit-dependent-easy.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200_000, help="environment steps per seed")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/python-bandit"))
    args = parser.parse_args()

    for seed in range(args.seeds):
        trainer = plastic.Trainer(config=CONFIG, seed=seed, out=args.out / f"seed{seed}")
        # A held-out evaluation every 20 updates; the best one is kept as `<run>/best`.
        trainer.learn(args.steps, callback=EvalCallback(eval_freq=20, n_eval_episodes=64))
        report = plastic.evaluate(trainer.policy, episodes=200, seed=1)
        agent = report["policies"][0]
        print(
            f"seed {seed}: held-out mean reward {agent['reward']['mean']:.2f} "
            f"± {agent['reward']['ci95']:.2f} over {report['episodes']} episodes ({trainer.run})"
        )


if __name__ == "__main__":
    main()
