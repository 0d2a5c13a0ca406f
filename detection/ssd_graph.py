"""Text graph (.pbtxt) that lets OpenCV's dnn module run a TF Object Detection API SSD graph.

OpenCV cannot execute the TF graph's preprocessing loop, anchor generator or postprocessing
(TensorArrays, while loops, NonMaxSuppression). The usual conversion keeps only the feature
extractor and box predictors and replaces the rest with OpenCV's Caffe-style SSD layers:
one PriorBox per feature map (anchors), the flattened predictions concatenated, and a
DetectionOutput layer that decodes boxes and runs NMS. Weights stay in the binary .pb; OpenCV
looks them up by name, so the text graph only describes the layers.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class SsdConfig:
    """Anchor and postprocessing settings; defaults are those baked into the SSDLite graph."""

    # Square input the graph resizes to (Preprocessor/.../ResizeImage/stack).
    input_size: int = 300
    num_layers: int = 6  # feature maps with a box predictor (BoxPredictor_0..5)
    min_scale: float = 0.2  # anchor scale of the first feature map, fraction of input
    max_scale: float = 0.95  # anchor scale of the last feature map
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 0.3333)  # width / height
    num_classes: int = 1  # foreground classes (person); background is class 0
    nms_threshold: float = 0.6  # IoU above which a lower-scoring box is suppressed
    top_k: int = 100  # boxes kept per image after NMS


class GraphMismatchError(ValueError):
    """The frozen graph does not have the layout the config describes."""


@dataclass(frozen=True, slots=True)
class _Node:
    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: str  # the node's attr blocks, verbatim text


_NODE_RE = re.compile(r"^node \{\n(.*?)^\}\n", re.MULTILINE | re.DOTALL)
_FIELD_RE = re.compile(r'^  (name|op|input): "(.*)"$')
_WEIGHTS_SHAPE_RE = re.compile(r"size: (-?\d+)")


def build_text_graph(pb_path: Path, config: SsdConfig = SsdConfig()) -> str:
    """The .pbtxt text for `pb_path`; deterministic for a given graph and config."""
    nodes = _read_nodes(pb_path)
    _check_predictors(nodes, config)
    kept = _backbone_nodes(nodes, config.num_layers)
    parts = [_placeholder("image_tensor")]
    parts += [_render(node) for node in kept]
    parts += _detection_head(config)
    return "".join(parts)


def load_ssd_net(pb_path: Path, config: SsdConfig = SsdConfig()) -> cv2.dnn.Net:
    """OpenCV net for the frozen graph; its output `detection_out` is (1, 1, top_k, 7)."""
    # The text graph is rebuilt in memory each time (~0.1 s), so no cache can go stale.
    text = build_text_graph(pb_path, config).encode()
    model = np.frombuffer(pb_path.read_bytes(), dtype=np.uint8)
    return cv2.dnn.readNetFromTensorflow(model, np.frombuffer(text, dtype=np.uint8))


def anchor_sizes(config: SsdConfig, layer: int) -> tuple[list[float], list[float]]:
    """Anchor (widths, heights) in pixels of one feature map, in the graph's anchor order."""
    scales = _layer_scales(config)
    if layer == 0:
        # The TF config's reduce_boxes_in_lowest_layer: a small 0.1 box plus two ratios.
        specs = [(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)]
    else:
        specs = [(scales[layer], ratio) for ratio in config.aspect_ratios]
        specs.append((math.sqrt(scales[layer] * scales[layer + 1]), 1.0))
    size = config.input_size
    widths = [scale * math.sqrt(ratio) * size for scale, ratio in specs]
    heights = [scale / math.sqrt(ratio) * size for scale, ratio in specs]
    return widths, heights


def _layer_scales(config: SsdConfig) -> list[float]:
    step = (config.max_scale - config.min_scale) / (config.num_layers - 1)
    # The trailing 1.0 only feeds the last layer's interpolated anchor.
    return [config.min_scale + step * i for i in range(config.num_layers)] + [1.0]


def _read_nodes(pb_path: Path) -> dict[str, _Node]:
    with tempfile.TemporaryDirectory() as tmp:
        text_path = Path(tmp) / "graph.pbtxt"
        cv2.dnn.writeTextGraph(str(pb_path), str(text_path))
        text = text_path.read_text()
    nodes = (_parse_node(match.group(1)) for match in _NODE_RE.finditer(text))
    return {node.name: node for node in nodes}


def _parse_node(block: str) -> _Node:
    fields: dict[str, list[str]] = {"name": [], "op": [], "input": []}
    attr_lines = []
    for line in block.splitlines(keepends=True):
        match = _FIELD_RE.match(line.rstrip("\n"))
        if match:
            fields[match.group(1)].append(match.group(2))
        else:
            attr_lines.append(line)
    return _Node(fields["name"][0], fields["op"][0], tuple(fields["input"]), "".join(attr_lines))


def _check_predictors(nodes: dict[str, _Node], config: SsdConfig) -> None:
    # Each predictor is a 1x1 conv; its output channels are anchors * 4 box coordinates and
    # anchors * (classes + 1) scores, so the anchor count per layer is read off the graph.
    for layer in range(config.num_layers):
        anchors = len(anchor_sizes(config, layer)[0])
        box = _output_channels(nodes, f"BoxPredictor_{layer}/BoxEncodingPredictor/weights")
        cls = _output_channels(nodes, f"BoxPredictor_{layer}/ClassPredictor/weights")
        if (box, cls) != (anchors * 4, anchors * (config.num_classes + 1)):
            raise GraphMismatchError(
                f"BoxPredictor_{layer} has {box} box and {cls} class channels; the config "
                f"expects {anchors} anchors and {config.num_classes} classes"
            )


def _output_channels(nodes: dict[str, _Node], weights_name: str) -> int:
    node = nodes.get(weights_name)
    if node is None:
        raise GraphMismatchError(f"the graph has no {weights_name}")
    # HWIO: the last dim is the output channels.
    return int(_WEIGHTS_SHAPE_RE.findall(node.attrs)[-1])


def _backbone_nodes(nodes: dict[str, _Node], num_layers: int) -> list[_Node]:
    """Layers the predictors depend on, with Identity skipped and preprocessing cut off."""
    # The image arrives already resized and normalised.
    aliases = {"Preprocessor/sub": "image_tensor"}

    def resolve(name: str) -> str:
        name = aliases.get(name, name)
        node = nodes.get(name)
        if node is not None and node.op == "Identity":
            return resolve(node.inputs[0])
        return name

    wanted = set(_reachable(_predictor_outputs(num_layers), nodes, resolve))
    return [
        _Node(node.name, node.op, tuple(resolve(i) for i in node.inputs), node.attrs)
        for node in nodes.values()
        if node.name in wanted
    ]


def _reachable(heads: Iterable[str], nodes: dict[str, _Node], resolve: Callable[[str], str]) -> Iterator[str]:
    # Const weights are left out: OpenCV reads their values from the .pb by name.
    stack, seen = [*heads], set()
    while stack:
        name = resolve(stack.pop())
        node = nodes.get(name)
        if name in seen or node is None or node.op in ("Const", "Placeholder"):
            continue
        seen.add(name)
        yield name
        stack.extend(node.inputs)


def _predictor_outputs(num_layers: int) -> list[str]:
    return [
        f"BoxPredictor_{layer}/{head}/BiasAdd"
        for layer in range(num_layers)
        for head in ("BoxEncodingPredictor", "ClassPredictor")
    ]


def _detection_head(config: SsdConfig) -> list[str]:
    parts = [
        _const_ints("concat/axis_flatten", [-1]),
        _const_ints("PriorBox/concat/axis", [-2]),
        _const_ints("reshape_prior_boxes_to_4d", [1, 2, -1, 1]),
    ]
    for head in ("BoxEncodingPredictor", "ClassPredictor"):
        parts += _flatten_and_concat(head, config.num_layers)
    parts.append(_node("ClassPredictor/concat/sigmoid", "Sigmoid", ["ClassPredictor/concat"]))
    parts += _prior_boxes(config)
    parts.append(_detection_output(config))
    return parts


def _flatten_and_concat(head: str, num_layers: int) -> list[str]:
    # Flatten on an NHWC tensor makes OpenCV permute to NHWC first, which keeps the TF
    # (y, x, anchor) order the anchors below are laid out in.
    names = [f"BoxPredictor_{layer}/{head}/BiasAdd" for layer in range(num_layers)]
    parts = [_node(f"{name}/Flatten", "Flatten", [name]) for name in names]
    flat = [f"{name}/Flatten" for name in names]
    parts.append(_node(f"{head}/concat", "ConcatV2", [*flat, "concat/axis_flatten"]))
    return parts


def _prior_boxes(config: SsdConfig) -> list[str]:
    parts, reshaped = [], []
    for layer in range(config.num_layers):
        widths, heights = anchor_sizes(config, layer)
        name = f"PriorBox_{layer}"
        feature_map = f"BoxPredictor_{layer}/BoxEncodingPredictor/BiasAdd"
        attrs = (
            _attr_bool("clip", False)
            + _attr_bool("flip", False)
            + _attr_floats("height", heights)
            # 1 / the TF box coder's scale factors (10, 10, 5, 5).
            + _attr_floats("variance", [0.1, 0.1, 0.2, 0.2])
            + _attr_floats("width", widths)
        )
        parts.append(_node(name, "PriorBox", [feature_map, "image_tensor"], attrs))
        parts.append(_node(f"{name}/4d", "Reshape", [name, "reshape_prior_boxes_to_4d"]))
        reshaped.append(f"{name}/4d")
    parts.append(_node("PriorBox/concat", "ConcatV2", [*reshaped, "PriorBox/concat/axis"]))
    return parts


def _detection_output(config: SsdConfig) -> str:
    attrs = (
        _attr("background_label_id", "i: 0")
        + _attr("code_type", 's: "CENTER_SIZE"')
        + _attr("confidence_threshold", "f: 0.01")
        + _attr("keep_top_k", f"i: {config.top_k}")
        # TF encodes (y, x, h, w), not Caffe's (x, y, w, h).
        + _attr_bool("loc_pred_transposed", True)
        + _attr("nms_threshold", f"f: {config.nms_threshold!r}")
        + _attr("num_classes", f"i: {config.num_classes + 1}")
        + _attr_bool("share_location", True)
        + _attr("top_k", f"i: {config.top_k}")
    )
    inputs = [
        "BoxEncodingPredictor/concat",
        "ClassPredictor/concat/sigmoid",
        "PriorBox/concat",
    ]
    return _node("detection_out", "DetectionOutput", inputs, attrs)


def _render(node: _Node) -> str:
    return _node(node.name, node.op, node.inputs, node.attrs)


def _node(name: str, op: str, inputs: Sequence[str] = (), attrs: str = "") -> str:
    lines = [f'  name: "{name}"\n', f'  op: "{op}"\n']
    lines += [f'  input: "{i}"\n' for i in inputs]
    return "node {\n" + "".join(lines) + attrs + "}\n"


def _placeholder(name: str) -> str:
    return _node(name, "Placeholder", (), _attr("dtype", "type: DT_FLOAT"))


def _attr(key: str, value: str) -> str:
    return f'  attr {{\n    key: "{key}"\n    value {{\n      {value}\n    }}\n  }}\n'


def _attr_bool(key: str, value: bool) -> str:
    return _attr(key, f"b: {str(value).lower()}")


def _attr_floats(key: str, values: Sequence[float]) -> str:
    vals = " ".join(f"float_val: {v!r}" for v in values)
    return _attr(key, _tensor("DT_FLOAT", len(values), vals))


def _const_ints(name: str, values: Sequence[int]) -> str:
    vals = " ".join(f"int_val: {v}" for v in values)
    return _node(name, "Const", (), _attr("value", _tensor("DT_INT32", len(values), vals)))


def _tensor(dtype: str, length: int, values: str) -> str:
    return f"tensor {{ dtype: {dtype} tensor_shape {{ dim {{ size: {length} }} }} {values} }}"
