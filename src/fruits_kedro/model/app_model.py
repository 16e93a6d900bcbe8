"""The app's model: MobileNetV2 and the folded head in one TFLite graph, without TensorFlow.

The backbone (a converted TFLite MobileNetV2 whose output is the 1280 pooled features) is edited
as a flatbuffer with LiteRT's own schema classes: a ``uint8`` RGB input is cast and scaled to
``[-1, 1]`` in the graph (``x / 127.5 - 1``, as :func:`~fruits_kedro.model.mobilenet.preprocess`
does), the features optionally go through a square root, then one fully connected layer and a
softmax give the class probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from fruits_kedro.model.native_logs import quiet_native_logs

TFLITE_IDENTIFIER = b"TFL3"
INPUT_NAME, OUTPUT_NAME = "image", "probabilities"
SQRT = "sqrt"
FEATURE_TRANSFORMS = ("none", SQRT)


@dataclass(frozen=True)
class Head:
    """A head on the backbone's features: ``t(f)`` (``transform``: ``none`` or ``sqrt``), then
    dense layers ``x @ W + b`` with a sigmoid between them and a softmax at the end (one layer
    for a logistic regression).

    ``layers`` holds ``(weights (inputs, outputs), bias (outputs,))`` pairs.
    """

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    transform: str = "none"

    def __post_init__(self) -> None:
        if self.transform not in FEATURE_TRANSFORMS:
            raise ValueError(f"unknown feature transform {self.transform!r}")
        width = self.layers[0][0].shape[0]
        for weights, bias in self.layers:
            if weights.shape[0] != width or bias.shape != (weights.shape[1],):
                raise ValueError(f"layer {weights.shape} + {bias.shape} after width {width}")
            width = weights.shape[1]

    @property
    def classes(self) -> int:
        """The number of outputs."""
        return int(self.layers[-1][0].shape[1])

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """The probabilities of ``features`` (``(n, features)``), in numpy: the reference."""
        x = np.sqrt(features) if self.transform == SQRT else features
        hidden = x.astype(np.float64)
        for i, (weights, bias) in enumerate(self.layers):
            hidden = hidden @ weights + bias
            if i < len(self.layers) - 1:
                hidden = 1.0 / (1.0 + np.exp(-hidden))
        scores = np.exp(hidden - hidden.max(axis=1, keepdims=True))
        return (scores / scores.sum(axis=1, keepdims=True)).astype(np.float32)


class _Graph:
    """Appends tensors, constants and operators to subgraph 0 of an unpacked model."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.subgraph = model.subgraphs[0]

    def tensor(
        self, name: str, shape: list[int], dtype: int, data: np.ndarray | None = None
    ) -> int:
        tensor = schema.TensorT()
        tensor.name, tensor.type = name.encode(), dtype
        tensor.shape = np.array(shape, dtype=np.int32)
        tensor.shapeSignature = np.array(
            [-1 if i == 0 else d for i, d in enumerate(shape)], np.int32
        )
        buffer = schema.BufferT()
        if data is not None:
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
        self.model.buffers.append(buffer)
        tensor.buffer = len(self.model.buffers) - 1
        self.subgraph.tensors.append(tensor)
        return len(self.subgraph.tensors) - 1

    def constant(self, name: str, values: np.ndarray) -> int:
        values = np.asarray(values, dtype=np.float32)
        return self.tensor(name, list(values.shape), schema.TensorType.FLOAT32, values)

    def operator(
        self, code: int, inputs: list[int], outputs: list[int], options: tuple[int, Any] | None
    ) -> Any:
        operator = schema.OperatorT()
        operator.opcodeIndex = self._opcode(code)
        operator.inputs = np.array(inputs, dtype=np.int32)
        operator.outputs = np.array(outputs, dtype=np.int32)
        if options is not None:
            operator.builtinOptionsType, operator.builtinOptions = options
        return operator

    def _opcode(self, code: int) -> int:
        for index, known in enumerate(self.model.operatorCodes):
            if max(known.builtinCode, known.deprecatedBuiltinCode) == code:
                return index
        opcode = schema.OperatorCodeT()
        opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = code, min(code, 127), 1
        self.model.operatorCodes.append(opcode)
        return len(self.model.operatorCodes) - 1


def with_head(backbone: bytes, head: Head, labels: list[str]) -> bytes:
    """The backbone's graph with a ``uint8`` image input and ``head`` on its features.

    Args:
        backbone: A TFLite MobileNetV2 (float32 ``(1, size, size, 3)`` in ``[-1, 1]``, the
            pooled features out), fp32 or int8 inside.
        head: The folded head; its width must be the backbone's feature width.
        labels: The class names, in the order of ``head``'s outputs.
    """
    model = schema.ModelT.InitFromPackedBuf(backbone, 0)
    graph = _Graph(model)
    sub = graph.subgraph
    (source,), (features,) = sub.inputs.tolist(), sub.outputs.tolist()
    size = [int(d) for d in sub.tensors[source].shape]
    width = int(sub.tensors[features].shape[-1])
    if head.layers[0][0].shape[0] != width or head.classes != len(labels):
        raise ValueError(
            f"a head of {head.classes} classes for {width} features, {len(labels)} labels"
        )
    f32, ops = schema.TensorType.FLOAT32, schema.BuiltinOperator
    image = graph.tensor(INPUT_NAME, size, schema.TensorType.UINT8)
    cast = graph.tensor("image_float", size, f32)
    scaled = graph.tensor("image_scaled", size, f32)
    before = [
        graph.operator(ops.CAST, [image], [cast], _cast_options()),
        graph.operator(
            ops.DIV, [cast, graph.constant("scale", np.array([127.5]))], [scaled], _options("Div")
        ),
        graph.operator(
            ops.SUB, [scaled, graph.constant("one", np.array([1.0]))], [source], _options("Sub")
        ),
    ]
    after = []
    if head.transform == SQRT:
        rooted = graph.tensor("features_sqrt", [1, width], f32)
        after.append(graph.operator(ops.SQRT, [features], [rooted], None))
        features = rooted
    for i, (weights, bias) in enumerate(head.layers):
        outputs = graph.tensor(f"head_{i}", [1, weights.shape[1]], f32)
        inputs = [features, graph.constant(f"head_{i}_weights", weights.T)]  # (outputs, inputs)
        after.append(
            graph.operator(
                ops.FULLY_CONNECTED,
                [*inputs, graph.constant(f"head_{i}_bias", bias)],
                [outputs],
                _options("FullyConnected"),
            )
        )
        features = outputs
        if i < len(head.layers) - 1:
            activated = graph.tensor(f"head_{i}_sigmoid", [1, weights.shape[1]], f32)
            after.append(graph.operator(ops.LOGISTIC, [features], [activated], None))
            features = activated
    probabilities = graph.tensor(OUTPUT_NAME, [1, head.classes], f32)
    after.append(
        graph.operator(ops.SOFTMAX, [features], [probabilities], _options("Softmax", beta=1.0))
    )
    sub.operators = before + list(sub.operators) + after
    sub.inputs = np.array([image], dtype=np.int32)
    sub.outputs = np.array([probabilities], dtype=np.int32)
    for signature in model.signatureDefs or []:
        signature.inputs[0].name, signature.inputs[0].tensorIndex = INPUT_NAME.encode(), image
        signature.outputs[0].name = OUTPUT_NAME.encode()
        signature.outputs[0].tensorIndex = probabilities
    return pack(model)


def pack(model: Any) -> bytes:
    """The flatbuffer of an unpacked TFLite model."""
    builder = flatbuffers.Builder(1024 * 1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def _options(kind: str, **values: Any) -> tuple[int, Any]:
    """``(BuiltinOptions type, options object)`` of operator ``kind`` (``"Softmax"``...)."""
    options = getattr(schema, f"{kind}OptionsT")()
    for key, value in values.items():
        setattr(options, key, value)
    return getattr(schema.BuiltinOptions, f"{kind}Options"), options


def _cast_options() -> tuple[int, Any]:
    return _options(
        "Cast", inDataType=schema.TensorType.UINT8, outDataType=schema.TensorType.FLOAT32
    )


def folded(
    affine: tuple[np.ndarray, np.ndarray],
    layers: tuple[tuple[np.ndarray, np.ndarray], ...],
    transform: str = "none",
) -> Head:
    """The head whose first layer also does ``x @ A + a`` (``affine``: the standardisations and
    the projection before the classifier, all affine), exactly."""
    (matrix, offset), ((weights, bias), *rest) = affine, layers
    first = (matrix @ weights, offset @ weights + bias)
    return Head((first, *rest), transform)


def standardisation(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x - mean) / std`` as ``x @ A + a`` (a zero where ``std`` is 0, as Spark ML does)."""
    inverse = np.divide(1.0, std, out=np.zeros_like(std, dtype=np.float64), where=std > 0)
    return np.diag(inverse), -mean * inverse


def chained(*affines: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One affine map doing ``affines`` in turn."""
    matrix, offset = affines[0]
    for next_matrix, next_offset in affines[1:]:
        matrix, offset = matrix @ next_matrix, offset @ next_matrix + next_offset
    return matrix, offset


class AppModel:
    """A model file :func:`with_head` wrote, run by LiteRT: ``uint8`` images in, probabilities
    out."""

    def __init__(self, content: bytes, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        with quiet_native_logs():  # XNNPACK's start-up line
            self._interpreter = Interpreter(model_content=content, num_threads=threads)
            self._interpreter.allocate_tensors()
        (source,), (target,) = (
            self._interpreter.get_input_details(),
            self._interpreter.get_output_details(),
        )
        self._input, self._output = source["index"], target["index"]
        self.input_size = int(source["shape"][1])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """The probabilities ``(n, classes)`` of ``(n, size, size, 3)`` uint8 pixels."""
        rows = []
        for image in pixels:
            self._interpreter.set_tensor(self._input, image[None])
            self._interpreter.invoke()
            rows.append(self._interpreter.get_tensor(self._output)[0].copy())
        return np.stack(rows)
