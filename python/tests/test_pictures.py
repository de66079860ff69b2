"""The TensorBoard pictures read back by TensorBoard's own reader: each decodes to the size its
event records, shows more than a few colours, and is neither one colour nor mostly the ends of
its colour scale (saturated)."""

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[2]

# The ends of the colour scales (envs/src/draw/colours.rs): viridis and the red-blue scale.
SCALE_ENDS = np.array([[68, 1, 84], [253, 231, 37], [33, 102, 172], [178, 24, 43]])


def pictures(run):
    acc = EventAccumulator(str(run), size_guidance={"images": 0})
    acc.Reload()
    return {tag: acc.Images(tag)[-1] for tag in acc.Tags()["images"]}


def check(tag, event, saturation=True):
    image = Image.open(io.BytesIO(event.encoded_image_string))
    assert image.size == (event.width, event.height), tag
    assert 200 <= event.width <= 2000 and 100 <= event.height <= 2000, (tag, image.size)
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    assert len(colours) >= 16, f"{tag}: {len(colours)} colours"
    assert counts.max() < 0.9 * len(pixels), f"{tag}: nearly one colour"
    if not saturation:
        return
    at_ends = (pixels[:, None, :] == SCALE_ENDS[None]).all(axis=2).any(axis=1).mean()
    assert at_ends < 0.25, f"{tag}: {at_ends:.0%} of the pixels at the ends of its scale"


def test_maze_pictures_read_back(maze_run):
    found = pictures(maze_run)
    assert set(found) == {"maze/visits", "maze/path", "plasticity/hebb"}
    for tag, event in found.items():
        check(tag, event)


def test_bandit_pictures_read_back(plastic_bin, tmp_path):
    run = tmp_path / "bandit"
    subprocess.run(
        [
            str(plastic_bin),
            "train",
            str(ROOT / "configs" / "bandit-dependent-easy.toml"),
            "--set",
            "run.total_steps=20000",
            "--set",
            "core.kind=plastic-rnn",
            "--out",
            str(run),
        ],
        check=True,
        capture_output=True,
    )
    found = pictures(run)
    assert set(found) == {"bandit/pulls", "plasticity/hebb"}
    check("bandit/pulls", found["bandit/pulls"])
    # This trace does reach its clip (±1) on nearly half its entries, which the picture shows
    # and says; the maze run's trace checks the scale.
    check("plasticity/hebb", found["plasticity/hebb"], saturation=False)


@pytest.mark.parametrize("colour", [[253, 231, 37], [178, 24, 43]])
def test_a_saturated_picture_fails_the_check(colour):
    """The check itself: a picture that is mostly one end of a scale is refused."""

    class Event:
        width, height = 300, 200

    rgb = np.full((200, 300, 3), colour, np.uint8)
    rgb[:40] = np.random.default_rng(0).integers(0, 255, (40, 300, 3))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    Event.encoded_image_string = buf.getvalue()
    with pytest.raises(AssertionError, match="ends of its scale"):
        check("saturated", Event)
