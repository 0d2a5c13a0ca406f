"""Pseudo-labels, training targets and fold logic of the localizer's training, on known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detection import train as train_cli
from detection.localizer.data import ZOOM_MAX, ZOOM_MIN, Augment, FrameTargets, View, transform_frame
from detection.localizer.losses import build_targets, focal_loss
from detection.localizer.pseudo import (
    LabelledBox,
    LabelledFrame,
    VideoLabels,
    add_clip_actions,
    add_kinematic_actions,
    link_tracks,
    merge_boxes,
    tile_windows,
    tiled_teacher,
)
from detection.localizer.scene import map_fighting as scene_fighting
from detection.localizer.training import clip_score, fight_folds, roc_auc

FPS = 10.0


def walking_video(
    speed_heights_per_s: float, *, width: float = 40, height: float = 100, clip: str | None = None, frames: int = 20
) -> VideoLabels:
    """One person moving right at a given speed (in body heights per second)."""
    out = []
    for i in range(frames):
        t = i / FPS
        x = 100 + speed_heights_per_s * height * t
        out.append(LabelledFrame(i, t, [LabelledBox((x, 200, x + width, 200 + height), "person", 0.9)]))
    labels = VideoLabels("synthetic", 1280, 720, FPS, out, True, clip)
    link_tracks(labels)
    add_kinematic_actions(labels)
    add_clip_actions(labels)
    return labels


def test_a_low_detail_view_keeps_its_size_and_loses_fine_texture() -> None:
    checker = (np.indices((240, 320)).sum(axis=0) % 2 * 255).astype(np.uint8)
    image = np.repeat(checker[:, :, None], 3, axis=2)
    sharp, _ = transform_frame(image, Augment(), 320, 240)
    soft, _ = transform_frame(image, Augment(detail=0.5), 320, 240)
    assert soft.shape == sharp.shape == (240, 320, 3)
    assert sharp.std() > 120, "a one-pixel checkerboard, untouched"
    assert soft.std() < 20, "rendered at half size, the checkerboard is a flat grey"


def test_augmented_zoom_reaches_the_sizes_of_the_inference_canvas() -> None:
    def zooms(ratio: float) -> np.ndarray:
        rng = np.random.default_rng(0)
        return np.array([Augment.random(rng, canvas_ratio=ratio).zoom for _ in range(2000)])

    same = zooms(1.0)
    assert same.min() >= ZOOM_MIN and same.max() <= ZOOM_MAX
    wider = zooms(512 / 320)  # the default canvases: trained on 320x240, run on 512x384
    assert wider.max() <= ZOOM_MAX * 1.6 + 1e-9
    assert (wider > ZOOM_MAX).mean() > 0.15, "a share of the views shows actors larger than before"
    assert wider.min() >= ZOOM_MIN


def test_tiles_overlap_and_cover_the_frame() -> None:
    tiles = tile_windows(800, 600)
    assert tiles == [(0, 0, 500, 375), (300, 0, 800, 375), (0, 225, 500, 600), (300, 225, 800, 600)]


def test_the_same_person_found_twice_keeps_its_best_score() -> None:
    merged = merge_boxes([((0, 0, 10, 20), 0.4), ((1, 0, 11, 20), 0.8), ((50, 0, 60, 20), 0.3)])
    assert merged == [((1, 0, 11, 20), 0.8), ((50, 0, 60, 20), 0.3)]


def test_the_tiled_teacher_adds_tile_finds_and_drops_people_cut_by_a_tile_edge() -> None:
    """A fake detector that sees a small person only when looking closer (in a tile), and in the
    other tiles a half person at their top-left corner, which lies inside the frame."""

    def base(image: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        height, width = image.shape[:2]
        if width == 800:  # the whole frame: only the big person
            return [((600.0, 300.0, 700.0, 580.0), 0.9)]
        if image[0, 0, 0] == 0:  # the top-left tile
            return [((100.0, 100.0, 120.0, 150.0), 0.7)]
        return [((0.0, 0.0, 20.0, 70.0), 0.8)]  # at the tile's top-left corner: cut off by an inner edge

    image = np.ones((600, 800, 3), dtype=np.uint8)
    image[:225, :300] = 0  # only the top-left tile starts with a zero pixel
    found = tiled_teacher(base)(image)
    assert ((100.0, 100.0, 120.0, 150.0), 0.7) in found, "the small person, in frame coordinates"
    assert ((600.0, 300.0, 700.0, 580.0), 0.9) in found
    assert len(found) == 2, found


def middle_actions(labels: VideoLabels) -> dict[str, float]:
    return labels.frames[len(labels.frames) // 2].boxes[0].actions


@pytest.mark.parametrize(
    ("speed", "expected"),
    [(0.0, "standing"), (0.8, "walking"), (2.0, "running")],
)
def test_kinematic_labels_follow_the_speed_in_body_heights(speed: float, expected: str) -> None:
    # Boxes 60 px wide: at 10 labelled frames/s a runner still overlaps their last box (IoU linking).
    actions = middle_actions(walking_video(speed, width=60))
    assert actions[expected] == 1.0
    assert sum(actions[a] for a in ("standing", "walking", "running")) == 1.0


def test_a_speed_between_classes_is_left_unknown() -> None:
    actions = middle_actions(walking_video(0.32))  # between standing (<= 0.25) and walking (>= 0.4)
    assert "standing" not in actions and "walking" not in actions


def test_a_wide_box_away_from_the_edges_is_lying_and_an_upright_one_is_not() -> None:
    assert middle_actions(walking_video(0.0, width=150, height=60))["lying"] == 1.0
    assert middle_actions(walking_video(0.0))["lying"] == 0.0


def test_clip_labels_mark_every_confident_person() -> None:
    assert middle_actions(walking_video(0.0, clip="fight"))["fighting"] == 1.0
    assert middle_actions(walking_video(0.0, clip="noFight"))["fighting"] == 0.0


def test_linking_keeps_one_track_for_one_moving_person() -> None:
    labels = walking_video(0.8)
    assert {f.boxes[0].track for f in labels.frames} == {0}


def targets(boxes: list[tuple[float, float, float, float]], *, ignore: list[bool], vehicles: bool) -> FrameTargets:
    n = len(boxes)
    return FrameTargets(
        np.array(boxes, dtype=np.float32).reshape(n, 4),
        np.zeros(n, dtype=np.int64),
        np.array(ignore, dtype=bool),
        np.zeros((n, 8), dtype=np.float32),
        np.ones((n, 8), dtype=bool),
        vehicles,
    )


def test_a_box_becomes_a_unit_peak_at_its_centre_cell_with_its_size() -> None:
    t = build_targets([targets([(84, 44, 116, 108)], ignore=[False], vehicles=True)], 2, 8, (30, 40))
    # centre (100, 76) px = (12.5, 9.5) grid units: the middle of cell (x=12, y=9), so no offset;
    # size 32 x 64 px = 4 x 8 grid units, learned as logs.
    assert t.heatmap[0, 0, 9, 12] == 1.0
    assert t.heatmap[0, 0].gt(0.999).sum() == 1
    centre = [i for i, c in enumerate(t.cells.tolist()) if c == [0, 9, 12]][0]
    np.testing.assert_allclose(t.size[centre].numpy(), [np.log(4), np.log(8), 0.0, 0.0], atol=1e-6)
    neighbour = [i for i, c in enumerate(t.cells.tolist()) if c == [0, 9, 13]][0]
    np.testing.assert_allclose(t.size[neighbour].numpy()[2:], [-1.0, 0.0], atol=1e-6)
    assert len(t.cells) == 9  # the centre and its 8 neighbours learn the box


def test_ignored_boxes_and_unlabelled_vehicles_carry_no_loss_weight() -> None:
    t = build_targets([targets([(80, 40, 112, 104)], ignore=[True], vehicles=False)], 2, 8, (30, 40))
    assert t.heatmap.sum() == 0 and len(t.cells) == 0
    assert t.weight[0, 0, 9, 12] == 0.0 and t.weight[0, 0, 0, 0] == 1.0
    assert t.weight[0, 1].sum() == 0.0


def test_the_focal_loss_is_lower_for_a_better_heatmap() -> None:
    t = build_targets([targets([(80, 40, 112, 104)], ignore=[False], vehicles=True)], 2, 8, (30, 40))
    good = torch.where(t.heatmap.eq(1), 6.0, -6.0)
    bad = torch.zeros_like(good)
    assert focal_loss(good, t.heatmap, t.weight) < focal_loss(bad, t.heatmap, t.weight)


def test_folds_are_stratified_disjoint_and_deterministic() -> None:
    views = [View(f"fi{i:03d}", 0, 1, [], 1.0, True) for i in range(10)]
    views += [View(f"nofi{i:03d}", 0, 1, [], 0.0, True) for i in range(10)]
    folds = fight_folds(views, 5, seed=0)
    assert folds == fight_folds(views, 5, seed=0)
    assert sorted(g for f in folds for g in f) == sorted(v.group for v in views)
    for fold in folds:
        assert sum(g.startswith("fi") for g in fold) == 2 and sum(g.startswith("nofi") for g in fold) == 2


def test_clip_score_and_auc_on_hand_cases() -> None:
    assert clip_score([0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.8]) == pytest.approx(0.85)  # top 2 of 8
    assert roc_auc([0.9, 0.4, 0.4, 0.1], [1, 1, 0, 0]) == pytest.approx(0.875)  # one tie counts half


def test_scene_fighting_is_the_mean_of_the_strongest_fighting_cells_of_each_frame() -> None:
    logits = torch.full((2, 3, 4, 5), -50.0)  # 2 frames, 3 actions, a 4 x 5 map: ~0 everywhere
    logits[0, 0] = 50.0  # another action: ignored
    logits[0, 1, 0, 0], logits[0, 1, 3, 4] = 50.0, 50.0  # frame 0: two fighting cells at ~1
    logits[1, 1] = 0.0  # frame 1: p = 0.5 in every cell
    # Frame 0 with k=4: (1 + 1 + 0 + 0) / 4; frame 1: 0.5 whatever k.
    assert scene_fighting(logits, 1, k=4) == pytest.approx([0.5, 0.5])
    assert scene_fighting(logits, 1, k=2) == pytest.approx([1.0, 0.5])
    assert scene_fighting(logits, 1, k=100) == pytest.approx([0.1, 0.5])  # k above the map: every cell


def test_user_labelled_ava_clips_become_training_labels(tmp_path) -> None:
    import av

    from detection.localizer.ava import labels_from_ava

    video = tmp_path / "clip1.mp4"
    with av.open(str(video), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="bgr24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(
        "video_id,timestamp_s,x1,y1,x2,y2,action,person_id\n"
        "clip1,0.5,0.25,0.5,0.5,1.0,walking,7\n"
        "clip1,0.5,0.25,0.5,0.5,1.0,fighting,7\n"
    )
    labels = labels_from_ava(csv_path, video, "clip1")
    (frame,) = labels.frames
    assert frame.index == 5 and frame.time == pytest.approx(0.5)
    (box,) = frame.boxes
    assert box.box == pytest.approx((16, 24, 32, 48))
    assert box.actions["walking"] == box.actions["fighting"] == 1.0
    assert box.actions["running"] == box.actions["lying"] == 0.0  # not listed: not happening
    assert not labels.vehicles_labelled


@pytest.mark.parametrize("flag", ["--views-per-clip", "--views-per-video"])
def test_train_refuses_fewer_than_one_view(tmp_path, flag: str) -> None:
    with pytest.raises(SystemExit, match="at least 1"):
        train_cli.main(["--data", str(tmp_path), flag, "0", "--no-save", "--folds", "0"])


def test_train_passes_the_view_counts_to_its_settings(tmp_path, monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr(train_cli, "run", lambda *a, settings, **k: seen.update(settings.__dict__) or {})
    monkeypatch.setattr(train_cli.torch, "set_num_threads", lambda n: None)  # keep the test process's threads
    train_cli.main(["--data", str(tmp_path), "--views-per-clip", "3", "--views-per-video", "6"])
    assert (seen["views_per_clip"], seen["views_per_video"]) == (3, 6)
