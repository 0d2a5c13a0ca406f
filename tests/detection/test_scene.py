"""The scene fight head: its features, its logistic regression, its checkpoint entry and its stream."""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from detection.localizer import scene_training
from detection.localizer.backend import LocalizerBackend
from detection.localizer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from detection.localizer.geometry import rgb_tensor
from detection.localizer.model import ArgusLocalizer, small_gray
from detection.localizer.scene import (
    MOTION_SIZE,
    ClipWindows,
    SceneHead,
    SceneMotion,
    auc,
    choose_c,
    clip_scores,
    clip_windows,
    fit_logistic,
    frame_descriptors,
    map_fighting,
    window_means,
)
from detection.localizer.scene_training import cross_validate
from tests.detection.localizer_models import SMALL, random_model


@functools.cache
def _model() -> ArgusLocalizer:
    """One seeded random localizer for the module (making one takes seconds); never modified."""
    return random_model()


# --- Features ------------------------------------------------------------------------------------


def test_descriptors_are_the_mean_and_max_change_at_each_lag() -> None:
    s16 = torch.zeros(4, 96, 2, 3)
    gray = torch.zeros(4, 1, 4, 4)
    s16[3, 5, 0, 0] = 6.0  # the newest frame: one cell of channel 5 changes by 6
    gray[2, 0, 1, 1] = 8.0  # the frame before: one grey pixel 8 brighter
    d = frame_descriptors(s16, gray)
    assert d.shape == (2, MOTION_SIZE)  # frames 2 and 3 have both lags behind them
    lag1, lag2 = d[1, :194], d[1, 194:]
    assert lag1[5] == pytest.approx(1.0) and lag1[96 + 5] == pytest.approx(6.0)  # mean over 6 cells, max
    assert lag1[:5].abs().sum() == 0 and lag1[6:96].abs().sum() == 0
    assert lag1[192] == pytest.approx(0.5) and lag1[193] == pytest.approx(8.0)  # frame 2 -> 3: grey back to 0
    assert lag2[192] == 0 and lag2[193] == 0  # frame 1 -> 3: no grey change
    assert d[0, 192] == pytest.approx(0.5) and d[0, 194 + 192] == pytest.approx(0.5)  # frame 2: both lags


def test_appearance_appends_the_mean_stride_32_map() -> None:
    d = frame_descriptors(torch.zeros(3, 96, 2, 2), torch.zeros(3, 1, 4, 4), torch.full((3, 320, 1, 2), 2.0))
    assert d.shape == (1, MOTION_SIZE + 320) and torch.all(d[0, MOTION_SIZE:] == 2.0)


def test_window_means_average_the_last_window_rows() -> None:
    rows = np.arange(10, dtype=float)[:, None]
    out = window_means(rows, window=3)
    assert out[:, 0].tolist() == [0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]


def test_the_stream_state_and_the_offline_clip_give_the_same_windows() -> None:
    torch.manual_seed(0)
    s16, gray = torch.rand(12, 96, 3, 4), torch.rand(12, 1, 8, 8)
    offline = clip_windows(s16, gray)
    motion = SceneMotion()
    online = np.stack([motion.push(m, g) for m, g in zip(s16, gray, strict=True)])
    assert offline.shape == (12, MOTION_SIZE)
    np.testing.assert_allclose(online, offline)
    assert np.all(offline[0] == 0), "the first frame has nothing to move from"
    # Once warm, a window is the mean of the last 8 frames' descriptors.
    full = frame_descriptors(s16, gray).double().numpy()  # rows for frames 2..11
    np.testing.assert_allclose(offline[11], full[-8:].mean(axis=0), rtol=1e-6)


@pytest.mark.parametrize(("fps", "every"), [(None, 1), (10, 1), (12, 1), (25, 2), (30, 3), (60, 6), (2, 1)])
def test_scene_frames_come_about_ten_times_a_second(fps: float | None, every: int) -> None:
    motion = SceneMotion.for_rate(fps)
    assert motion.every == every
    assert [motion.due() for _ in range(2 * every)] == ([True] + [False] * (every - 1)) * 2


# --- Logistic regression -------------------------------------------------------------------------


def test_the_fit_is_at_the_regularised_optimum() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) * [1, 2, 3, 4, 5] + 7
    y = (x[:, 0] - 7 + rng.normal(size=200) > 0).astype(int)
    head = fit_logistic(x, y, c=0.5)
    z = (x - head.mean) / head.scale
    p = 1 / (1 + np.exp(-(z @ head.weight + head.bias)))
    # Stationarity of C x sum(log-loss) + |w|^2 / 2: C X^T (p - y) + w = 0 and sum(p - y) = 0.
    np.testing.assert_allclose(0.5 * z.T @ (p - y) + head.weight, 0, atol=1e-5)
    assert abs((p - y).sum()) < 1e-5
    assert head.weight[0] > 0 and np.argmax(np.abs(head.weight)) == 0
    np.testing.assert_allclose(head.probability(x), p)


def test_a_constant_feature_does_not_break_the_fit() -> None:
    x = np.c_[np.arange(20.0), np.ones(20)]
    head = fit_logistic(x, (np.arange(20) >= 10).astype(int), c=1.0)
    assert head.scale[1] == 1.0 and np.all(np.isfinite(head.weight))


def test_auc_on_a_hand_case_and_with_one_class() -> None:
    assert auc([0.9, 0.4, 0.4, 0.1], [1, 1, 0, 0]) == pytest.approx(0.875)
    assert math.isnan(auc([0.3, 0.2], [1, 1]))


def _synthetic_clips(separation: float, n: int = 40, seed: int = 0) -> list[ClipWindows]:
    """n clips of 6 windows with 3 features; fights have feature 0 shifted by `separation`."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        label = int(i < n // 2)
        group = f"fi{i:03d}" if label else f"nofi{i:03d}"
        for identity in (True, False):
            windows = rng.normal(size=(6, 3))
            windows[:, 0] += separation * label
            clips.append(ClipWindows(group, label, identity, windows))
    return clips


def test_cross_validation_separates_separable_clips_and_uses_the_map_scores() -> None:
    clips = _synthetic_clips(separation=4.0)
    groups = sorted({c.group for c in clips})
    backwards = {g: 0.0 if g.startswith("fi") else 1.0 for g in groups}  # a map score that is always wrong
    result = cross_validate(clips, 5, 0, backwards)
    assert result["scene_head"]["auc_mean_of_folds"] == 1.0
    assert result["scene_head"]["accuracy_at_0.5"] == 1.0
    assert set(result["scene_head"]["scores"]) == set(groups)
    # The mean of a perfect score in [0, 1] and an inverted 0/1 one: fights are below every non-fight.
    assert result["scene_combined"]["auc_pooled"] < 0.5
    for g, s in result["scene_head"]["scores"].items():
        assert result["scene_combined"]["scores"][g] == pytest.approx((s + backwards[g]) / 2, abs=1e-4)


def test_cross_validation_without_signal_is_near_chance() -> None:
    result = cross_validate(_synthetic_clips(separation=0.0, n=60), 5, 0)
    assert 0.3 < result["scene_head"]["auc_pooled"] < 0.7
    assert "scene_combined" not in result


def test_c_is_chosen_from_the_grid_and_clip_scores_read_unmirrored_views_only() -> None:
    clips = _synthetic_clips(separation=1.0)
    assert choose_c(clips) in (0.01, 0.1, 1.0)
    head = fit_logistic(np.vstack([c.windows for c in clips]), np.repeat([c.label for c in clips], 6), 1.0)
    scores = clip_scores(head, clips)
    assert len(scores) == 40
    first = clips[0]
    probs = np.sort(head.probability(first.windows))[::-1]
    assert scores[first.group] == pytest.approx(probs[:2].mean())  # round(6 / 4) = 2 windows


# --- Checkpoint and stream -----------------------------------------------------------------------


def _head(seed: int = 0, size: int = MOTION_SIZE) -> SceneHead:
    rng = np.random.default_rng(seed)
    return SceneHead(rng.random(size), rng.random(size) + 0.5, rng.normal(size=size) * 0.1, -0.2, 0.1)


def test_a_scene_head_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    head = _head()
    save_checkpoint(_model(), path, version="s", record={}, scene_head=head)
    _, meta = load_checkpoint(path)
    loaded = meta["scene_head"]
    np.testing.assert_array_equal(loaded.weight, head.weight)
    assert (loaded.bias, loaded.c) == (head.bias, head.c)
    _, plain = load_checkpoint(_saved(tmp_path / "plain.pt", None))
    assert "scene_head" not in plain


def _saved(path: Path, head: SceneHead | None) -> Path:
    save_checkpoint(_model(), path, version="s", record={}, scene_head=head)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h.update(lags=[1, 3]), "other features"),
        (lambda h: h.update(weight=h["weight"][:-1]), "one length"),
        (lambda h: h.pop("bias"), "malformed"),
    ],
)
def test_a_scene_head_for_other_features_is_refused(tmp_path: Path, change, message: str) -> None:
    path = _saved(tmp_path / "m.pt", _head())
    payload = torch.load(path, weights_only=True)
    change(payload["scene_head"])
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_a_head_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path / "m.pt", _head(size=MOTION_SIZE + 320))
    with pytest.raises(CheckpointError, match="weights, expected"):
        load_checkpoint(path)


def _backend(head: SceneHead | None) -> LocalizerBackend:
    meta = {"version": "t"} | ({"scene_head": head} if head is not None else {})
    return LocalizerBackend(_model(), meta, device=torch.device("cpu"))


def test_the_stream_scores_its_scene_frames_as_the_head_and_the_map_say(monkeypatch) -> None:
    head = _head()
    backend = _backend(head)
    map_values: list[list[float]] = []

    def recorded(logits: torch.Tensor, index: int) -> list[float]:
        map_values.append(map_fighting(logits, index))
        return map_values[-1]

    monkeypatch.setattr("detection.localizer.backend.map_fighting", recorded)
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (SMALL.infer_height, SMALL.infer_width, 3), dtype=np.uint8) for _ in range(7)]
    stream = backend.stream(fps=30, scene=True)  # a scene frame every 3rd analysed frame: 0, 3, 6
    values = []
    for image in frames:
        stream.detect(image)
        values.append(stream.scene_fighting)
    assert len(map_values) == 3, "the full action map only on scene frames"
    assert values[0] == values[1] == values[2] and values[3] == values[4] == values[5] != values[6]
    # The same from the model directly: the head on the motion window of frames 0, 3 and 6.
    with torch.inference_mode():
        images = rgb_tensor([frames[i] for i in (0, 3, 6)])
        _, s16, _ = backend.model.backbone_maps(images)
        window = clip_windows(s16.float(), small_gray(images).float())[-1]
    expected = (head.probability(window[None])[0] + map_values[-1][0]) / 2
    assert values[6] == pytest.approx(expected, rel=1e-5)
    assert all(v is not None and 0 <= v <= 1 for v in values)
    stream.reset()
    assert stream.scene_fighting is None and stream.scene is not None and stream.scene.count == 0


def test_the_map_value_is_the_mean_of_the_strongest_fighting_cells() -> None:
    logits = torch.full((1, 3, 2, 2), -50.0)
    logits[0, 1, 0, 0] = 50.0
    assert map_fighting(logits, 1, k=2) == pytest.approx([0.5])


def test_without_a_head_or_unasked_there_is_no_scene_score() -> None:
    image = np.zeros((SMALL.infer_height, SMALL.infer_width, 3), dtype=np.uint8)
    for stream in (_backend(None).stream(fps=25, scene=True), _backend(_head()).stream(fps=25)):
        stream.detect(image)
        assert stream.scene is None and stream.scene_fighting is None


def test_the_head_serialises_to_plain_json() -> None:
    data = json.loads(json.dumps(_head().to_dict()))
    assert SceneHead.from_dict(data).weight.shape == (MOTION_SIZE,)


# --- Training command ----------------------------------------------------------------------------


def _fight_dataset(root: Path, n: int = 10) -> list[str]:
    """n 1.2 s clips at 10 fps: fights have a block jumping about, the others a block standing still."""
    (root / "fight" / "fight").mkdir(parents=True)  # labels.csv paths are relative to fight/, as in ../shared/data
    rng = np.random.default_rng(0)
    rows, names = [], []
    for i in range(n):
        fight = i < n // 2
        name = f"fi{i:03d}" if fight else f"nofi{i:03d}"
        with av.open(str(root / "fight" / "fight" / f"{name}.mkv"), "w") as container:
            stream = container.add_stream("ffv1", rate=10)
            stream.width, stream.height, stream.pix_fmt = 96, 64, "bgr0"
            for _ in range(12):
                image = np.full((64, 96, 3), 90, dtype=np.uint8)
                x, y = (rng.integers(0, 70), rng.integers(0, 40)) if fight else (30 + i, 20)
                image[y : y + 24, x : x + 24] = 230
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
            container.mux(stream.encode())
        rows.append(f"fight/{name}.mkv,{'fight' if fight else 'noFight'}\n")
        names.append(name)
    (root / "fight" / "labels.csv").write_text("path,label\n" + "".join(rows))
    return names


def test_the_training_command_cross_validates_and_stores_the_head(tmp_path: Path, capsys, monkeypatch) -> None:
    names = _fight_dataset(tmp_path / "data")
    map_scores = {n: 0.5 for n in names}  # an uninformative localizer: the mean ranks as the head does
    record = {"settings": {"seed": 0}, "fight_cv": {"folds": 5, "scene_fighting": {"scores": map_scores}}}
    checkpoint = tmp_path / "in.pt"
    save_checkpoint(_model(), checkpoint, version="v-in", record=record)
    out = tmp_path / "out.pt"
    cache = tmp_path / "cache"
    args = ["--checkpoint", str(checkpoint), "--out", str(out), "--data", str(tmp_path / "data")]
    args += ["--cache-dir", str(cache)]
    assert scene_training.main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(list(cache.glob("*.npz"))) == len(names), "one cache file per clip"
    assert printed["scene_head"]["auc_mean_of_folds"] == 1.0, printed
    assert printed["scene_combined"]["auc_pooled"] == printed["scene_head"]["auc_pooled"]
    assert "scores" not in printed["scene_head"], "per-clip scores stay in the checkpoint"
    _, meta = load_checkpoint(out)
    assert meta["version"] == "v-in" and meta["scene_head"].weight.shape == (MOTION_SIZE,)
    stored = meta["record"]["scene_cv"]
    assert set(stored["scene_head"]["scores"]) == set(names) and stored["final_c"] in (0.01, 0.1, 1.0)
    assert meta["record"]["fight_cv"] == record["fight_cv"], "the localizer's record is kept"

    # Again: read from the cache, nothing decoded, the same head; a changed clip is decoded again.
    def no_decoding(path: Path) -> list:
        raise AssertionError(f"decoded {path.name}")

    monkeypatch.setattr(scene_training, "scene_frames", no_decoding)
    again = tmp_path / "again.pt"
    assert scene_training.main([*args[:3], str(again), *args[4:]]) == 0
    np.testing.assert_array_equal(load_checkpoint(again)[1]["scene_head"].weight, meta["scene_head"].weight)
    changed = tmp_path / "data" / "fight" / "fight" / f"{names[0]}.mkv"
    os.utime(changed, ns=(0, 0))
    with pytest.raises(AssertionError, match=f"decoded {names[0]}"):
        scene_training.main(args)


def test_the_training_command_needs_the_fight_labels(tmp_path: Path, capsys) -> None:
    checkpoint = tmp_path / "in.pt"
    save_checkpoint(_model(), checkpoint, version="v", record={})
    args = ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "o.pt"), "--data", str(tmp_path)]
    assert scene_training.main(args) == 2
    assert "no fight labels" in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()
