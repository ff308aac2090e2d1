"""Clips from user videos (lv2_env/data/user_videos.py) on small synthetic videos with known motion and a hard cut."""

import math
import warnings
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from lv2_env.signals.control import DepthRange
from lv2_env.data.point_tracks import clip_controls, initial_points, lk_tracks
from lv2_env.data.user_videos import build_from_videos, plan_sequences, read_caption
from lv2_env.data.video_shots import centre_crop_resize, read_shots
from lv2_env.media.video import Mp4Writer
from model.clips import ClipDataset, read_index

SRC_H, SRC_W = 64, 80  # source frames: 64 x 80, centre-cropped to 64 x 64, resized to 48 x 48
OUT = 48
SCALE = OUT / SRC_H
F, HISTORY, FPS = 9, 4, 16
WALK_FPS, WALK_A, WALK_B = 30, 75, 60  # walk.mp4: 75 frames of pattern A, a hard cut, 60 frames of pattern B
SLOW_FPS, SLOW_N = 24, 40
FIELDS = ("rgb", "history", "depth", "dense", "sparse", "poses", "intrinsics", "depth_range")


def texture(seed: int, tint: tuple[float, float, float]) -> np.ndarray:
    """A smooth random texture on a canvas large enough to slide a 64 x 80 window 1 px per frame."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (SRC_H + 8, SRC_W + 160)).astype(np.float32), (0, 0), 1.5)
    grey = (noise - noise.min()) / (noise.max() - noise.min())
    return np.clip(np.stack([grey * 255 * t + 20 for t in tint], axis=-1), 0, 255).astype(np.uint8)


GREEN, RED = (0.25, 0.9, 0.25), (0.9, 0.25, 0.25)


def sliding(canvas: np.ndarray, n: int) -> np.ndarray:
    """Frames whose content moves LEFT by 1 source pixel per frame."""
    return np.stack([canvas[4 : 4 + SRC_H, i : i + SRC_W] for i in range(n)])


def fake_depth(frames: np.ndarray) -> np.ndarray:
    """Stand-in depth estimator: bright is near (1 m), dark is far (10 m)."""
    grey = frames.astype(np.float32).mean(axis=-1) / 255.0
    return (1.0 + 9.0 * (1.0 - grey)).astype(np.float32)


def green(frame: np.ndarray) -> bool:
    mean = frame.reshape(-1, 3).mean(axis=0)
    return bool(mean[1] > mean[0])


def ticks_of_shot(src_fps: int, first: int, end: int, total: int) -> int:
    """Number of 1/16 s ticks whose nearest source frame (ties: earlier) is in [first, end)."""
    count, k = 0, 0
    last = Fraction(total - 1, src_fps)
    while Fraction(k, FPS) < last + Fraction(1, 2 * src_fps):
        nearest = math.ceil(Fraction(k * src_fps, FPS) - Fraction(1, 2))
        count += first <= nearest < end
        k += 1
    return count


def clips_of(n: int) -> int:
    if n < F:
        return 0
    run_up = min(HISTORY, n - F)
    return 1 + (n - run_up - F) // (F - 1)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    videos = tmp_path_factory.mktemp("videos")
    with Mp4Writer(videos / "walk.mp4", fps=WALK_FPS) as writer:
        writer.write(sliding(texture(1, GREEN), WALK_A))
        writer.write(sliding(texture(2, RED), WALK_B))
    (videos / "walk.txt").write_text("a walk past a hedge\nsecond line is ignored\n")
    (videos / "sub").mkdir()
    with Mp4Writer(videos / "sub" / "slow.mov", fps=SLOW_FPS) as writer:
        writer.write(sliding(texture(3, GREEN), SLOW_N))
    with Mp4Writer(videos / "short.mp4", fps=24) as writer:
        writer.write(sliding(texture(4, GREEN), 8))
    (videos / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (videos / "notes.md").write_text("not a video")
    out = tmp_path_factory.mktemp("data")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = build_from_videos(videos, out, fake_depth, height=OUT, width=OUT, frames=F, fps=FPS,
                                   history_frames=HISTORY, progress=False, clips_per_sequence=2)
    return videos, out, report, caught


def test_bad_videos_are_skipped_with_reasons(built):
    videos, _, report, caught = built
    skipped = dict(report.skipped)
    assert set(skipped) == {str(videos / "corrupt.mp4"), str(videos / "short.mp4")}
    assert "cannot read" in skipped[str(videos / "corrupt.mp4")]
    assert "too short" in skipped[str(videos / "short.mp4")]
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("corrupt.mp4" in m for m in messages) and any("short.mp4" in m for m in messages)
    assert report.videos == 4 and report.videos_used == 2


def test_index_is_readable_and_clip_counts_follow_the_shots(built):
    _, out, report, _ = built
    index = read_index(out, expect={"height": OUT, "width": OUT, "frames": F, "fps": FPS, "history_frames": HISTORY})
    assert index["split"] == "videos" and index["poses_known"] is False and index["clips_per_sequence"] == 2
    total = WALK_A + WALK_B
    shot_a = ticks_of_shot(WALK_FPS, 0, WALK_A, total)
    shot_b = ticks_of_shot(WALK_FPS, WALK_A, total, total)
    slow = ticks_of_shot(SLOW_FPS, 0, SLOW_N, SLOW_N)
    assert (shot_a, shot_b, slow) == (40, 32, 27)  # 16 fps from 30 and 24 fps, nearest frame to each tick
    per_shot = {}
    for entry in index["clips"]:
        per_shot[(entry["video"], entry["shot"])] = per_shot.get((entry["video"], entry["shot"]), 0) + 1
    assert per_shot == {("walk.mp4", 0): clips_of(shot_a), ("walk.mp4", 1): clips_of(shot_b),
                        ("sub/slow.mov", 0): clips_of(slow)}
    assert report.clips == len(index["clips"]) == 9 and report.sequences == 5 and report.shots == 4
    walk = [e for e in index["clips"] if e["video"] == "walk.mp4" and e["shot"] == 0]
    assert [e["start_time"] for e in walk] == [HISTORY / FPS + k * (F - 1) / FPS for k in range(len(walk))]
    assert all(e["caption"] == "a walk past a hedge" for e in index["clips"] if e["video"] == "walk.mp4")
    assert all(e["caption"] == "" for e in index["clips"] if e["video"] == "sub/slow.mov")


def test_clip_fields_shapes_and_dtypes(built):
    _, out, _, _ = built
    dataset = ClipDataset(out, FIELDS)
    for i in range(len(dataset)):
        clip = dataset[i]
        assert clip["rgb"].shape == (F, OUT, OUT, 3) and clip["rgb"].dtype == np.uint8
        assert clip["history"].shape[1:] == (OUT, OUT, 3) and clip["history"].dtype == np.uint8
        assert len(clip["history"]) == dataset.clips[i]["history"] == HISTORY  # every shot here has the run-up
        assert clip["depth"].shape == (F, OUT, OUT) and clip["depth"].dtype == np.float16
        assert clip["dense"].shape == (F, OUT, OUT) and clip["dense"].dtype == np.uint8
        assert clip["sparse"].shape == (F, OUT, OUT, 3) and clip["sparse"].dtype == np.uint8
        assert clip["poses"].shape == (F, 4, 4) and clip["poses"].dtype == np.float32 and np.isnan(clip["poses"]).all()
        assert clip["intrinsics"].shape == (3, 3) and np.isnan(clip["intrinsics"]).all()
        assert clip["depth_range"].shape == (2,) and clip["depth_range"].dtype == np.float32
        assert (clip["sparse"].reshape(F, -1).max(axis=1) > 0).all()  # tracks drawn in every frame
    for entry in dataset.clips:
        with np.load(out / entry["file"]) as data:
            assert str(data["caption"]) == entry["caption"] == ("a walk past a hedge" if entry["video"] == "walk.mp4" else "")


def test_no_clip_spans_the_cut(built):
    _, out, _, _ = built
    dataset = ClipDataset(out, ("rgb", "history"))
    for i, entry in enumerate(dataset.clips):
        clip = dataset[i]
        kinds = {green(f) for f in np.concatenate([clip["history"], clip["rgb"]])}
        assert len(kinds) == 1, f"clip {entry['file']} mixes the two shots"
        assert kinds.pop() == (entry["video"] != "walk.mp4" or entry["shot"] == 0)


def test_dense_uses_one_global_range_per_sequence_and_sparse_is_drawn_from_lk_tracks(built):
    _, out, _, _ = built
    dataset = ClipDataset(out, ("rgb", "history", "dense", "sparse", "depth_range"))
    sequences: dict[int, list[int]] = {}
    for i, entry in enumerate(dataset.clips):
        sequences.setdefault(entry["sequence"], []).append(i)
    for members in sequences.values():
        clips = [dataset[i] for i in members]
        assert len({tuple(c["depth_range"]) for c in clips}) == 1
        # The sequence's frames: the first clip's run-up, then the clips (which share one frame each).
        frames = np.concatenate([clips[0]["history"], clips[0]["rgb"]] + [c["rgb"][1:] for c in clips[1:]])
        expected = DepthRange.fit(fake_depth(frames))
        assert np.allclose(clips[0]["depth_range"], [expected.near, expected.far])
        for c in clips:
            controls = clip_controls(c["rgb"], fake_depth(c["rgb"]), expected)
            assert np.array_equal(c["dense"], controls.dense[..., 0])
            assert np.array_equal(c["sparse"], controls.sparse)


def test_lk_tracks_follow_the_known_translation(built):
    _, out, _, _ = built
    dataset = ClipDataset(out, ("rgb",))
    truth = -(F - 1) * WALK_FPS / FPS * SCALE  # content moves left 1 source px per 1/30 s: -11.25 px per clip
    for i, entry in enumerate(dataset.clips):
        if entry["video"] != "walk.mp4":
            continue
        rgb = dataset[i]["rgb"]
        tracks, visible = lk_tracks(rgb)
        kept = visible[-1]
        moved = tracks[-1, kept] - tracks[0, kept]
        assert abs(np.median(moved[:, 0]) - truth) < 1.0 and abs(np.median(moved[:, 1])) < 1.0
        leaving = tracks[0, :, 0] < -truth  # these points are carried out of the image
        staying = tracks[0, :, 0] > -truth + 6
        assert leaving.sum() > 10 and not visible[-1, leaving].any()
        assert visible[-1, staying].mean() > 0.8
        assert (visible[:-1] >= visible[1:]).all()  # once lost, lost for the rest of the clip
        corners = initial_points(rgb[0], "corners")  # Shi-Tomasi corners topped up to the grid's count
        assert corners.shape == tracks[0].shape
        tracks, visible = lk_tracks(rgb, corners)
        assert abs(np.median(tracks[-1, visible[-1], 0] - tracks[0, visible[-1], 0]) - truth) < 1.0


def test_helpers():
    assert plan_sequences(8, 9, 4) == (0, [])
    assert plan_sequences(9, 9, 4) == (0, [[0]])
    assert plan_sequences(12, 9, 4) == (3, [[3]])
    assert plan_sequences(40, 9, 4, 2) == (4, [[4, 12], [20, 28]])
    image = np.zeros((64, 80, 3), np.uint8)
    image[:, 8:72] = 200  # the centre 64 x 64 survives the crop
    assert (centre_crop_resize(image, 32, 32) == 200).all()
    assert centre_crop_resize(image, 40, 100).shape == (40, 100, 3)


def test_caption_sidecar(tmp_path):
    (tmp_path / "clip.txt").write_text("\n")
    assert read_caption(tmp_path / "clip.mp4") == "" and read_caption(tmp_path / "other.mp4") == ""


def test_display_rotation_is_applied(tmp_path):
    path = tmp_path / "portrait.mp4"
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, 32:] = 255  # right half white; rotated 90 degrees counter-clockwise it becomes the top half
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=16)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    shots = list(read_shots(path, 64, 32))
    frame = shots[0].frames[0].astype(int)
    assert frame[:28].mean() > 200 and frame[36:].mean() < 50


def test_depth_estimator_of_the_wrong_shape_is_an_error(built, tmp_path):
    videos, _, _, _ = built
    with pytest.raises(ValueError, match="depth_estimator must return"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_from_videos(videos, tmp_path / "bad", lambda f: np.ones(f.shape[:2], np.float32), height=OUT,
                          width=OUT, frames=F, history_frames=HISTORY, progress=False)
