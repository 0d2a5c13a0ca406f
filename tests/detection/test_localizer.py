"""The localizer package on seeded random models and random tensors (CPU): shapes of every stage,
strict checkpoints, streaming equal to clip inference, batching equal to one-by-one, letterbox and
decode geometry, the ONNX graphs, and the "localizer" detector in the camera pipeline."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch

from detection import detectors, pipeline, tasks
from detection.localizer import backend as backend_module
from detection.localizer import checkpoint as checkpoint_module
from detection.localizer import export, inference
from detection.localizer.backend import LocalizerBackend, Stream
from detection.localizer.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, save_checkpoint
from detection.localizer.decode import decode, find_peaks, nms
from detection.localizer.geometry import apply_letterbox, fit_letterbox, to_tensor_rgb
from detection.localizer.model import STRIDE, HeadOutputs, LocalizerConfig, TemporalBranch
from detection.types import ACTIONS, ACTIONS_BY_CLASS, ACTOR_CLASSES, Detection, Frame
from tests.detection.localizer_models import SMALL, random_model, write_random_checkpoint

H, W = SMALL.input_height, SMALL.input_width
T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def model():
    return random_model()


def rng_frames(count: int, seed: int, height: int = H, width: int = W) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


# --- Shapes --------------------------------------------------------------------------------------


@torch.inference_mode()
def test_every_stage_has_the_documented_shape(model) -> None:
    images = torch.rand(3, 3, H, W)
    s8, s16, s32 = model.backbone_maps(images)
    assert (s8.shape, s16.shape, s32.shape) == ((3, 32, H // 8, W // 8), (3, 96, H // 16, W // 16), (3, 320, 2, 3))
    features = model.frame_features(images, None)
    assert features.f2d.shape == (3, SMALL.neck_channels, H // 8, W // 8)
    assert features.memory.shape == (3, SMALL.memory_channels + 1, H // 16, W // 16)
    assert features.gray.shape == (3, 1, H // 4, W // 4)
    assert torch.all(features.memory[:, -1] == 0), "a first frame has no motion"
    memories = torch.stack([features.memory] * SMALL.clip_len, dim=1)
    assert model.temporal(memories).shape == (3, SMALL.temporal_channels, H // 16, W // 16)
    heads = model.heads(features.f2d, memories)
    assert heads.heatmap.shape == (3, len(ACTOR_CLASSES), H // STRIDE, W // STRIDE)
    assert heads.size.shape == (3, 4, H // STRIDE, W // STRIDE)
    assert heads.actions.shape == (3, len(ACTIONS), H // STRIDE, W // STRIDE)


@torch.inference_mode()
def test_a_clip_forward_gives_one_output_per_clip(model) -> None:
    out = model(torch.rand(2, SMALL.clip_len, 3, H, W))
    assert out.heatmap.shape == (2, len(ACTOR_CLASSES), H // STRIDE, W // STRIDE)
    assert out.actions.shape == (2, len(ACTIONS), H // STRIDE, W // STRIDE)


# --- Checkpoints ---------------------------------------------------------------------------------


def test_a_checkpoint_round_trips_weights_config_labels_and_record(model, tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    save_checkpoint(model, path, version="t-1", record={"epochs": 3})
    loaded, meta = load_checkpoint(path)
    assert loaded.config == model.config
    assert meta["version"] == "t-1" and meta["record"] == {"epochs": 3}
    assert meta["labels"] == {"classes": list(ACTOR_CLASSES), "actions": list(ACTIONS)}
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    clip = torch.rand(1, SMALL.clip_len, 3, H, W)
    with torch.inference_mode():
        assert torch.equal(loaded(clip).heatmap, model(clip).heatmap)
    assert not list(tmp_path.glob("*.tmp")), "no temporary file left behind"


def _tampered(model, tmp_path: Path, change) -> Path:
    path = tmp_path / "good.pt"
    save_checkpoint(model, path, version="t", record={})
    payload = torch.load(path, weights_only=True)
    change(payload)
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    return bad


def _drop_a_key(p: dict) -> None:
    p["state_dict"].pop("neck.lat8.0.weight")


def _add_a_key(p: dict) -> None:
    p["state_dict"]["extra.weight"] = torch.zeros(1)


def _swap_labels(p: dict) -> None:
    p["labels"]["actions"] = list(reversed(p["labels"]["actions"]))


def _future_format(p: dict) -> None:
    p["format_version"] = FORMAT_VERSION + 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_drop_a_key, r"(?s)weights do not fit the model: .*Missing key.*neck\.lat8\.0\.weight"),
        (_add_a_key, r"(?s)weights do not fit the model: .*Unexpected key.*extra\.weight"),
        (_swap_labels, "label map does not match its config"),
        (_future_format, f"checkpoint format {FORMAT_VERSION + 1} is not supported"),
    ],
    ids=["missing key", "extra key", "wrong label map", "wrong format version"],
)
def test_strict_loading_refuses_a_checkpoint_that_does_not_fit(model, tmp_path: Path, change, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(_tampered(model, tmp_path, change))


def test_strict_loading_refuses_files_that_are_not_checkpoints(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(text)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not an argus-localizer checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_the_checkpoint_sets_the_trackers_start_score(model, tmp_path: Path) -> None:
    """A camera's tracker starts tracks from the score its checkpoint's config names; a checkpoint
    written before that setting existed gets the current default."""
    tuned = dataclasses.replace(SMALL, track_start_score=0.35)
    backend = LocalizerBackend.load(write_random_checkpoint(tmp_path / "tuned.pt", tuned), device="cpu")
    assert pipeline.new_state(backend.stream(), []).tracker.config.high_thresh == 0.35

    def forget_the_setting(p: dict) -> None:
        del p["config"]["track_start_score"]

    older, _ = load_checkpoint(_tampered(model, tmp_path, forget_the_setting))
    assert older.config.track_start_score == LocalizerConfig().track_start_score


# --- Streaming -----------------------------------------------------------------------------------


class HeatmapRecorder:
    """Stands in for the backend's find_peaks to keep the centre heatmaps it computed."""

    def __init__(self) -> None:
        self.heatmaps: list[torch.Tensor] = []

    def __call__(self, heatmap: torch.Tensor, **kwargs):
        self.heatmaps.append(heatmap.clone())
        return find_peaks(heatmap, **kwargs)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> HeatmapRecorder:
    rec = HeatmapRecorder()
    monkeypatch.setattr(backend_module, "find_peaks", rec)
    return rec


def test_a_warming_stream_equals_the_clip_model_with_its_first_frame_repeated(recorder) -> None:
    """Frame k of a stream is analysed as the clip model analyses the last T frames plus the one
    before them (which gives the oldest memory its motion), the first frame standing in for those
    before it (and comparing with itself: no motion). Its actors are those of the clip model's dense
    heads (the stream reads sizes and actions only at the peaks)."""
    model = random_model(heat_bias=-1.0)
    backend = LocalizerBackend(model, {}, device=torch.device("cpu"))
    stream = backend.stream()
    images = rng_frames(SMALL.clip_len + 3, seed=1)
    tensors = torch.from_numpy(to_tensor_rgb(images))
    box = fit_letterbox(W, H, W, H)  # the frames fill the canvas: network pixels are source pixels
    found = 0
    for k in range(len(images)):
        got = stream.detect(images[k])
        length = SMALL.clip_len + 1
        window = [0] * max(0, length - k - 1) + list(range(max(0, k + 1 - length), k + 1))
        with torch.inference_mode():
            expected = model(tensors[window][None])
        # Rounding only: the backend sums in other orders (channels-last, folded batch-norms), which
        # moves these random-weight logits by up to about 1.5e-4; a wrong sum moves them by 0.1+.
        torch.testing.assert_close(recorder.heatmaps[-1], expected.heatmap, atol=3e-4, rtol=1e-4, msg=f"frame {k}")
        want = backend._detections(decode(expected, min_score=backend.min_score)[0], box)
        assert_same_detections(got, want, backend.min_score)
        for g, w in zip(sorted(got, key=lambda d: -d.score), sorted(want, key=lambda d: -d.score), strict=False):
            assert g.actions == pytest.approx(w.actions, abs=1e-3)
        found += len(got)
    assert found, "the biased random model finds actors"
    assert len(stream.memories) == SMALL.clip_len


def test_the_cell_heads_equal_the_dense_heads_at_their_cells() -> None:
    fast = inference.inference_model(random_model(), torch.device("cpu"))
    fused = torch.randn(1, SMALL.fused_channels, H // STRIDE, W // STRIDE).contiguous(memory_format=torch.channels_last)
    ys = torch.tensor([0, 0, 3, H // STRIDE - 1, H // STRIDE - 1, 5])  # corners and edges use the zero padding
    xs = torch.tensor([0, W // STRIDE - 1, 4, 0, W // STRIDE - 1, 7])
    size, actions = inference.CellHeads(fast)(fused[0], ys, xs)
    with torch.inference_mode():
        torch.testing.assert_close(size, fast.size_head(fused)[0][:, ys, xs], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(actions, fast.action_head(fused)[0][:, ys, xs], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="fold the batch-norms first"):
        inference.CellHeads(random_model())


def test_a_batch_of_cameras_gives_what_each_camera_gets_alone(recorder) -> None:
    backend = LocalizerBackend(random_model(heat_bias=-1.0), {}, device=torch.device("cpu"))
    cameras = [rng_frames(5, seed=10 + c) for c in range(3)]
    alone = [backend.stream() for _ in cameras]
    together = [backend.stream() for _ in cameras]
    for t in range(5):
        singles = [stream.detect(frames[t]) for stream, frames in zip(alone, cameras, strict=True)]
        single_heat = recorder.heatmaps[-3:]
        batched = backend.step([(stream, frames[t]) for stream, frames in zip(together, cameras, strict=True)])
        batch_heat = recorder.heatmaps[-1]
        for c in range(3):
            torch.testing.assert_close(batch_heat[c], single_heat[c][0], atol=1e-3, rtol=1e-3)
            assert singles[c], "the biased random model finds actors"
            assert_same_detections(batched[c], singles[c], backend.min_score)


def assert_same_detections(got: list[Detection], want: list[Detection], min_score: float) -> None:
    """Equal up to float noise; order among near-equal scores, and actors within noise of the
    minimum score, may differ."""

    def found(d: Detection, among: list[Detection]) -> bool:
        return any(
            e.label == d.label and np.allclose(e.box, d.box, atol=1e-2) and abs(e.score - d.score) < 1e-3 for e in among
        )

    for a, b in ((got, want), (want, got)):
        missing = [d for d in a if d.score > min_score + 1e-3 and not found(d, b)]
        assert not missing, missing


def test_a_reset_stream_starts_afresh(model, recorder) -> None:
    backend = LocalizerBackend(model, {}, device=torch.device("cpu"))
    images = rng_frames(4, seed=3)
    stream = backend.stream()
    for image in images:
        stream.detect(image)
    stream.reset()
    stream.detect(images[0])
    first = recorder.heatmaps[-1]
    backend.stream().detect(images[0])
    torch.testing.assert_close(recorder.heatmaps[-1], first)


def test_detections_are_in_source_pixels_with_their_class_actions_only() -> None:
    backend = LocalizerBackend(random_model(heat_bias=-1.0), {}, device=torch.device("cpu"))
    image = rng_frames(1, seed=5, height=300, width=200)[0]  # a tall frame: padded left and right
    detections = backend.stream().detect(image)
    assert detections, "the biased random model finds actors"
    for d in detections:
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 < x2 <= 200 and 0 <= y1 < y2 <= 300
        assert set(d.actions) == set(ACTIONS_BY_CLASS[d.label])
        assert all(0.0 <= p <= 1.0 for p in d.actions.values())


# --- Geometry and decoding -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "zoom", "shift"),
    [((768, 576), 1.0, (0.5, 0.5)), ((200, 300), 1.0, (0.5, 0.5)), ((1920, 1080), 0.7, (0.2, 0.9))],
)
def test_letterbox_maps_boxes_there_and_back(src: tuple[int, int], zoom: float, shift) -> None:
    box = fit_letterbox(*src, W * 4, H * 4, zoom=zoom, shift=shift)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1, (50, 2, 2)) * src
    boxes = np.concatenate([xy.min(axis=1), xy.max(axis=1)], axis=1).astype(np.float32)
    np.testing.assert_allclose(box.to_source(box.to_network(boxes)), boxes, atol=1e-3)


def test_letterbox_keeps_the_picture_and_pads_the_rest() -> None:
    image = np.full((100, 200, 3), 200, dtype=np.uint8)
    box = fit_letterbox(200, 100, 96, 64)  # scale 0.48: 96x48, 8 px of padding above and below
    out = apply_letterbox(image, box, 96, 64)
    assert out.shape == (64, 96, 3)
    assert (out[:7] == 114).all() and (out[-7:] == 114).all() and (out[12:52] == 200).all()


def _hand_made_outputs() -> HeadOutputs:
    hh, ww = 10, 16
    heat = torch.full((1, 2, hh, ww), -10.0)
    size = torch.zeros(1, 4, hh, ww)
    actions = torch.full((1, len(ACTIONS), hh, ww), -10.0)
    heat[0, 0, 3, 4] = 3.0  # a person centred in cell (y=3, x=4)
    size[0, :, 3, 4] = torch.tensor([np.log(2.0), np.log(4.0), 0.25, -0.25])
    actions[0, ACTIONS.index("walking"), 3, 4] = 2.0
    heat[0, 1, 6, 10] = 1.0  # a vehicle centred in cell (y=6, x=10)
    size[0, :, 6, 10] = torch.tensor([np.log(4.0), np.log(2.0), 0.0, 0.0])
    actions[0, ACTIONS.index("moving"), 6, 10] = 0.0
    return HeadOutputs(heat, size, actions)


def test_decode_turns_two_heatmap_peaks_into_two_boxes() -> None:
    (person, vehicle), *_ = decode(_hand_made_outputs(), min_score=0.3)
    # Centre (x + 0.5 + dx) * 8, size exp(log s) * 8.
    assert person.class_index == 0 and person.score == pytest.approx(1 / (1 + np.exp(-3.0)))
    np.testing.assert_allclose(person.box, (38.0 - 8, 26.0 - 16, 38.0 + 8, 26.0 + 16), atol=1e-4)
    assert person.actions[ACTIONS.index("walking")] == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert vehicle.class_index == 1 and vehicle.score == pytest.approx(1 / (1 + np.exp(-1.0)))
    np.testing.assert_allclose(vehicle.box, (84.0 - 16, 52.0 - 8, 84.0 + 16, 52.0 + 8), atol=1e-4)
    assert vehicle.actions[ACTIONS.index("moving")] == pytest.approx(0.5)


def test_decode_drops_peaks_below_the_minimum_score() -> None:
    (only,) = decode(_hand_made_outputs(), min_score=0.8)[0]
    assert only.class_index == 0


def test_nms_keeps_the_best_of_overlapping_boxes_of_one_class_only() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=np.float32)
    kept = nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]), np.array([0, 0, 1, 0]), 0.5)
    assert kept == [0, 2, 3]


# --- ONNX graphs ---------------------------------------------------------------------------------


def test_the_exported_graphs_compute_what_the_stream_computes(model) -> None:
    frame_program, heads_program = export.exported_programs(model)
    (images, prev_gray), (f2d, memories) = export.example_inputs(model, batch=3)  # another batch size
    with torch.inference_mode():
        for got, want in zip(
            frame_program.module()(images, prev_gray), export.FrameGraph(model)(images, prev_gray), strict=True
        ):
            torch.testing.assert_close(got, want)
        direct = model.frame_features(images, prev_gray)
        torch.testing.assert_close(frame_program.module()(images, prev_gray)[1], direct.memory)
        for got, want in zip(heads_program.module()(f2d, memories), model.heads(f2d, memories), strict=True):
            torch.testing.assert_close(got, want)


def test_the_export_command_names_missing_onnx_packages_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = write_random_checkpoint(tmp_path / "m.pt")
    monkeypatch.setattr(export, "find_spec", lambda name: None)  # as on an install without them
    code = export.main(["--out", str(tmp_path / "out" / "m.onnx"), "--checkpoint", str(checkpoint)])
    assert code == 2
    assert "needs the onnx and onnxscript package(s)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_the_onnx_graphs_compute_in_onnxruntime_what_a_stream_computes(tmp_path: Path, recorder) -> None:
    """The export command writes two self-contained graphs (into a folder it creates); run as the
    module docstring tells a runtime to (the frame graph once a frame, the heads over the last T
    memories, the oldest repeated), they give the heads a stream of the backend gives, frame by frame."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is a dev requirement; absent here")
    checkpoint = write_random_checkpoint(tmp_path / "m.pt", heat_bias=-1.0)
    out = tmp_path / "exported" / "m.onnx"
    assert export.main(["--out", str(out), "--checkpoint", str(checkpoint)]) == 0
    names = {p.name for p in out.parent.iterdir()}
    assert names == {"m.frame.onnx", "m.heads.onnx", "m.json"}, "no external weight files"
    frame_graph, heads_graph = (ort.InferenceSession(str(out.parent / f"m.{g}.onnx")) for g in ("frame", "heads"))
    backend = LocalizerBackend.load(checkpoint, device="cpu")
    stream = backend.stream()
    memories: list[np.ndarray] = []
    prev_gray = None
    for k, image in enumerate(rng_frames(SMALL.clip_len + 3, seed=5)):
        stream.detect(image)
        images = to_tensor_rgb([image])
        if prev_gray is None:  # a stream's first frame is compared with itself
            prev_gray = frame_graph.run(
                ["gray"], {"images": images, "prev_gray": np.zeros((1, 1, H // 4, W // 4), np.float32)}
            )[0]
        f2d, memory, prev_gray = frame_graph.run(None, {"images": images, "prev_gray": prev_gray})
        memories = [*memories, memory][-SMALL.clip_len :]
        clip = np.stack([memories[0]] * (SMALL.clip_len - len(memories)) + memories, axis=1)
        heatmap, size, actions = heads_graph.run(None, {"f2d": f2d, "memories": clip})
        # Two runtimes sum in different orders: logits agree to ~1e-4 (7.6e-5 for the shipped
        # model on vtest frames); a wrong memory order or motion input is off by 0.1 or more.
        np.testing.assert_allclose(heatmap, recorder.heatmaps[-1].numpy(), atol=1e-3, rtol=1e-3, err_msg=f"frame {k}")
        # The stream reads sizes and actions only at peaks: the graph's dense maps are checked
        # against the PyTorch heads on the same inputs.
        with torch.inference_mode():
            dense = backend.model.heads(torch.from_numpy(f2d), torch.from_numpy(clip))
        for got, want in ((size, dense.size), (actions, dense.actions)):
            np.testing.assert_allclose(got, want.numpy(), atol=1e-3, rtol=1e-3, err_msg=f"frame {k}")


# --- The detector in the worker ------------------------------------------------------------------


@pytest.fixture
def checkpoint_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A random checkpoint where the worker looks for the default one; the process cache emptied."""
    path = write_random_checkpoint(tmp_path / "argus-localizer.pt", heat_bias=-1.0)
    monkeypatch.setattr(checkpoint_module, "DEFAULT_CHECKPOINT", path)
    detectors.shared_localizer.reset()
    yield path
    detectors.shared_localizer.reset()


class FakeSink:
    def __init__(self) -> None:
        self.frames: list[tuple[int, list]] = []

    def on_frame(self, frame: Frame, tracks) -> None:
        self.frames.append((frame.index, list(tracks)))

    def on_hits(self, frame: Frame, hits, tracks) -> None:
        pass

    def keep_going(self, stats) -> bool:
        return True


def test_the_localizer_plugs_into_the_camera_pipeline(checkpoint_in_place: Path) -> None:
    state = pipeline.new_state(detectors.load_detector("localizer"), [])
    sink = FakeSink()
    base = rng_frames(1, seed=9, height=120, width=160)[0]
    for index in range(6):  # a static scene: the same actors frame after frame
        frame = Frame(index=index, time=T0 + timedelta(seconds=0.5 * index), image=base)
        pipeline.process_frame(state, frame, sink)
    assert [i for i, _ in sink.frames] == list(range(6))
    assert sink.frames[0][1] == [], "a track is confirmed by its second detection"
    tracks = sink.frames[-1][1]
    assert tracks, "the same actors in every frame become tracks"
    for track in tracks:
        assert set(getattr(track, "actions", {})) == set(ACTIONS_BY_CLASS[track.label])


def test_every_camera_gets_its_own_stream_over_one_loaded_model(checkpoint_in_place: Path, settings) -> None:
    settings.ARGUS_DETECTOR = "localizer"
    first, second = tasks.worker_detector(), tasks.worker_detector()
    assert isinstance(first, Stream) and isinstance(second, Stream)
    assert first is not second and first.memories is not second.memories
    assert first.backend is second.backend
    first.detect(rng_frames(1, seed=2)[0])
    assert len(first.memories) == 1 and len(second.memories) == 0


def test_workers_load_the_checkpoint_the_settings_name(checkpoint_in_place: Path, tmp_path: Path, settings) -> None:
    """ARGUS_LOCALIZER_CHECKPOINT: e.g. a copy calibrated for these cameras; empty: the default."""
    settings.ARGUS_DETECTOR = "localizer"
    assert tasks.worker_detector().track_start_score == LocalizerConfig().track_start_score  # type: ignore[attr-defined]
    ours = write_random_checkpoint(tmp_path / "ours.pt", dataclasses.replace(SMALL, track_start_score=0.35))
    settings.ARGUS_LOCALIZER_CHECKPOINT = str(ours)
    stream = tasks.worker_detector()
    assert isinstance(stream, Stream) and stream.track_start_score == 0.35
    assert pipeline.new_state(stream, []).tracker.config.high_thresh == 0.35
    assert tasks.worker_detector().backend is stream.backend  # still loaded once per process

    settings.ARGUS_LOCALIZER_CHECKPOINT = str(tmp_path / "typo.pt")
    with pytest.raises(detectors.DetectorUnavailable, match="typo.pt: no such checkpoint"):
        tasks.worker_detector()
    settings.ARGUS_DETECTOR = "auto"
    assert tasks.worker_detector().name == "ssdlite"  # falls back, with the reason logged


def test_auto_prefers_the_localizer_when_its_checkpoint_loads(checkpoint_in_place: Path) -> None:
    assert detectors.load_detector("auto").name == "localizer"


def test_auto_falls_back_to_ssdlite_with_a_warning_without_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(checkpoint_module, "DEFAULT_CHECKPOINT", tmp_path / "none.pt")
    detectors.shared_localizer.reset()
    try:
        with caplog.at_level(logging.WARNING, logger="detection.detectors"):
            assert detectors.load_detector("auto").name == "ssdlite"
        with pytest.raises(detectors.DetectorUnavailable, match="no such checkpoint"):
            detectors.load_detector("localizer")
    finally:
        detectors.shared_localizer.reset()
    assert "localizer detector unavailable" in caplog.text and "no such checkpoint" in caplog.text


def test_the_localizer_reads_its_inference_size_from_the_checkpoint(tmp_path: Path) -> None:
    config = LocalizerConfig(input_height=64, input_width=96, infer_height=96, infer_width=128, clip_len=4)
    backend = LocalizerBackend.load(write_random_checkpoint(tmp_path / "m.pt", config), device="cpu")
    stream = backend.stream()
    for image in rng_frames(6, seed=4, height=50, width=70):
        stream.detect(image)
    assert len(stream.memories) == 4
    assert stream.memories[-1].shape == (config.memory_channels + 1, 96 // 16, 128 // 16)


def test_the_backend_folds_batch_norms_without_changing_outputs() -> None:
    """Inference folds every conv + batch-norm pair (2D and 3D) into the conv: same heads, no
    batch-norm left, and the caller's model (which training may go on using) is untouched."""
    model = random_model()
    with torch.no_grad():  # running statistics far from 0/1, so a wrong fold would show
        for norm in (m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
    norms_before = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    fused = inference.fuse_batch_norms(model)
    assert norms_before > 0
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in fused.modules())
    assert sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()) == norms_before
    clip = torch.from_numpy(to_tensor_rgb(rng_frames(SMALL.clip_len + 1, seed=3)))[None]
    with torch.inference_mode():
        expected, got = model.eval()(clip), fused(clip)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)


def test_the_backend_stores_convolution_weights_channels_last() -> None:
    """oneDNN's CPU convolutions work channels-last; in the default layout each one reorders its input
    and output (about half of a frame's time, measured). No 3D convolution is left (PyTorch's CPU
    build has no fast kernel for them). The caller's model keeps its layout, since training goes on
    using it. That outputs stay the same is the streaming test above, which runs this backend
    against the plain clip model."""
    model = random_model()
    backend = LocalizerBackend(model, {}, device=torch.device("cpu"))
    assert not any(isinstance(m, torch.nn.Conv3d) for m in backend.model.modules())
    convs = [m for m in backend.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    # 1x1 and depthwise kernels are laid out alike in both layouts: only the others tell them apart.
    plain = [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d) and min(m.weight.shape[1], m.weight[0, 0].numel()) > 1
    ]
    assert plain and not any(c.weight.is_contiguous(memory_format=torch.channels_last) for c in plain)


@pytest.mark.parametrize("batch", [1, 3])
def test_the_channels_last_temporal_branch_equals_the_trained_one(batch: int) -> None:
    """The backend's rewrite of the temporal branch (2D convolutions over channels-last views) gives
    the branch's outputs, batch-norm statistics included, for one camera and for a batch."""
    model = random_model()
    with torch.no_grad():
        for norm in (m for m in model.temporal.modules() if isinstance(m, torch.nn.BatchNorm3d | torch.nn.BatchNorm2d)):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
    branch = model.eval().temporal
    fast = inference.ChannelsLastTemporal(cast(TemporalBranch, inference.fuse_batch_norms(branch)))
    torch.manual_seed(batch)
    memories = torch.rand(batch, SMALL.clip_len, SMALL.memory_channels + 1, 5, 7)
    with torch.inference_mode():
        expected, got = branch(memories), fast(memories)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_the_channels_last_temporal_branch_wants_folded_batch_norms() -> None:
    with pytest.raises(ValueError, match="fuse_batch_norms"):
        inference.ChannelsLastTemporal(random_model().temporal)
