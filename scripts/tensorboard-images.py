"""Writes the newest picture of each TensorBoard image tag of a run as a PNG file.

    scripts/with-env.sh python scripts/tensorboard-images.py runs/maze-small_1 --out pictures/

Files are named after their tags (`maze/path` -> `maze-path.png`); `--tag` picks some.
"""

import argparse
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder (its TensorBoard event files)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the PNGs into")
    parser.add_argument("--tag", action="append", help="only this tag (repeatable)")
    args = parser.parse_args()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(args.run), size_guidance={"images": 1})
    acc.Reload()
    tags = acc.Tags()["images"]
    wanted = args.tag or tags
    missing = [t for t in wanted if t not in tags]
    if missing or not tags:
        print(
            f"{args.run} has no picture tagged {', '.join(missing) or 'at all'}; "
            f"its image tags: {', '.join(tags) or 'none'}",
            file=sys.stderr,
        )
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for tag in wanted:
        newest = acc.Images(tag)[-1]
        path = args.out / (tag.replace("/", "-") + ".png")
        path.write_bytes(newest.encoded_image_string)
        print(f"{path}: {tag} at step {newest.step}, {newest.width}x{newest.height}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
