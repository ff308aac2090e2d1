"""Phantom share and goal colour error (lv2_env/evaluation/phantoms.py) on frames whose answer is known."""

import numpy as np
import pytest

from lv2_env.evaluation.phantoms import EDGE_PIXELS, goal_colour_error, open_pixels, phantom_mask, phantom_share

H = W = 64


def _scene():
    """Sky above row 24, a checkered grass ground below, one object (id 1) and the goal (id 2)."""
    truth = np.zeros((H, W, 3), np.uint8)
    truth[:24] = (120, 170, 230)
    rows, cols = np.mgrid[24:H, 0:W]
    truth[24:] = np.where((((rows // 8) + (cols // 8)) % 2)[..., None] == 0, (70, 140, 60), (80, 155, 70))
    ids = np.zeros((H, W), np.int16)
    ids[:24] = -1
    truth[16:40, 4:14] = (200, 40, 40)
    ids[16:40, 4:14] = 1
    truth[20:36, 44:56] = (40, 60, 200)
    ids[20:36, 44:56] = 2
    return truth, ids


def test_the_truth_has_no_phantoms_and_a_blurred_truth_almost_none():
    truth, ids = _scene()
    assert phantom_share(truth[None], truth[None], ids[None]) == 0.0
    padded = np.pad(truth.astype(float), [(1, 1), (1, 1), (0, 0)], mode="edge")
    blurred = sum(padded[dy:dy + H, dx:dx + W] for dy in range(3) for dx in range(3)) / 9
    assert phantom_share(blurred.astype(np.uint8)[None], truth[None], ids[None]) < 0.01


def test_debris_on_open_ground_is_found_where_it_is():
    truth, ids = _scene()
    frame = truth.copy()
    frame[44:54, 24:34] = (20, 20, 30)  # a dark fragment on the grass, away from every object
    mask = phantom_mask(frame, truth, ids)
    assert mask[46:52, 26:32].all()  # its inside
    assert not mask[:, :20].any() and not mask[:20].any()  # nothing far from it
    share = phantom_share(frame[None], truth[None], ids[None])
    fragment = 100 / open_pixels(ids).sum()
    assert fragment <= share < 2.5 * fragment  # the fragment and a rim of structure around it


def test_what_is_drawn_on_objects_or_their_edges_is_not_a_phantom():
    truth, ids = _scene()
    frame = truth.copy()
    frame[16:40, 4:14] = (255, 255, 0)  # the object recoloured: a colour error, not a phantom
    frame[20 - EDGE_PIXELS:20, 44:56] = (0, 0, 0)  # the goal drawn a few pixels too tall
    assert phantom_share(frame[None], truth[None], ids[None]) == 0.0


def test_the_goal_colour_error_is_the_distance_of_its_mean_colours():
    truth, ids = _scene()
    frame = truth.copy()
    frame[ids == 2] += np.array([30, 30, 30], np.uint8)
    frames = np.stack([frame, truth])
    assert goal_colour_error(frames, np.stack([truth, truth]), np.stack([ids, ids]), 2) == pytest.approx(
        np.sqrt(3) * 30 / 2)  # one frame off by 30 per channel, one exact
    assert goal_colour_error(frame[None], truth[None], ids[None], 1) == 0.0
    hidden = np.where(ids == 2, 0, ids)
    assert np.isnan(goal_colour_error(frame[None], truth[None], hidden[None], 2))


def test_frames_of_another_shape_are_refused():
    truth, ids = _scene()
    with pytest.raises(ValueError, match=r"expected a frame and its truth \[H, W, 3\]"):
        phantom_mask(truth[:32], truth, ids)
