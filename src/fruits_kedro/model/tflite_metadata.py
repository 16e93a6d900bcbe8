"""TFLite metadata (the ``M001`` flatbuffer MediaPipe Tasks and TFLite Support read) and the
labels file packed with a model.

The metadata names the model, its version, author and licence, describes the image input (RGB,
its size and normalisation) and the probabilities output, whose labels are the associated file
``labels.txt``. As the TFLite Support writer does, the metadata goes into the model's buffers
under ``TFLITE_METADATA`` and the associated files are appended to the model as a zip archive.
Field slots follow ``metadata_schema.fbs`` (schema 1.5).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from fruits_kedro.model.app_model import pack

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
LABELS_FILE = "labels.txt"
MIN_PARSER_VERSION = "1.0.0"
# Enum values of metadata_schema.fbs.
_TENSOR_AXIS_LABELS, _RGB = 2, 1
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES, _NORMALIZATION = 1, 2, 1


@dataclass(frozen=True)
class ModelCard:
    """What the metadata says of a classifier taking ``input_size`` px RGB images."""

    name: str
    version: str
    description: str
    author: str
    licence: str
    labels: tuple[str, ...]
    input_size: int
    input_description: str = "An RGB photo, uint8, resized to the model's input."
    output_description: str = "The probability of each class, in the order of labels.txt."
    mean: float = 127.5  # the graph computes x / std - mean / std = x / 127.5 - 1
    std: float = 127.5


def metadata_buffer(card: ModelCard) -> bytes:
    """The ``ModelMetadata`` flatbuffer of ``card``."""
    b = flatbuffers.Builder(1024)

    def strings(*values: str) -> list[int]:
        return [b.CreateString(v) for v in values]

    def table(slots: list[tuple[str, int, int | float]]) -> int:
        """A table of ``(kind, slot, value)``: ``o`` offset, ``b`` ubyte, ``u`` uint32."""
        b.StartObject(max(slot for _, slot, _ in slots) + 1 if slots else 0)
        for kind, slot, value in slots:
            if kind == "o":
                b.PrependUOffsetTRelativeSlot(slot, int(value), 0)
            elif kind == "b":
                b.PrependUint8Slot(slot, int(value), 0)
            else:
                b.PrependUint32Slot(slot, int(value), 0)
        return int(b.EndObject())

    def vector(offsets: list[int]) -> int:
        b.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        return int(b.EndVector())

    def floats(values: list[float]) -> int:
        b.StartVector(4, len(values), 4)
        for value in reversed(values):
            b.PrependFloat32(value)
        return int(b.EndVector())

    # The labels file, attached to the output tensor.
    name, description = strings(LABELS_FILE, "The class names, one per line.")
    labels = table([("o", 0, name), ("o", 1, description), ("b", 2, _TENSOR_AXIS_LABELS)])
    # The input: an RGB image of input_size px, and its normalisation.
    size = table([("u", 0, card.input_size), ("u", 1, card.input_size)])
    image = table([("b", 0, _RGB), ("o", 1, size)])
    input_content = table([("b", 0, _IMAGE_PROPERTIES), ("o", 1, image)])
    normalization = table([("o", 0, floats([card.mean])), ("o", 1, floats([card.std]))])
    unit = table([("b", 0, _NORMALIZATION), ("o", 1, normalization)])
    stats = table([("o", 0, floats([255.0])), ("o", 1, floats([0.0]))])
    input_name, input_text = strings("image", card.input_description)
    input_tensor = table(
        [
            ("o", 0, input_name),
            ("o", 1, input_text),
            ("o", 3, input_content),
            ("o", 4, vector([unit])),
            ("o", 5, stats),
        ]
    )
    # The output: the probabilities, labelled.
    output_content = table([("b", 0, _FEATURE_PROPERTIES), ("o", 1, table([]))])
    output_stats = table([("o", 0, floats([1.0])), ("o", 1, floats([0.0]))])
    output_name, output_text = strings("probabilities", card.output_description)
    output_tensor = table(
        [
            ("o", 0, output_name),
            ("o", 1, output_text),
            ("o", 3, output_content),
            ("o", 5, output_stats),
            ("o", 6, vector([labels])),
        ]
    )
    subgraph = table([("o", 2, vector([input_tensor])), ("o", 3, vector([output_tensor]))])
    fields = strings(
        card.name, card.description, card.version, card.author, card.licence, MIN_PARSER_VERSION
    )
    model_name, model_text, version, author, licence, parser = fields
    root = table(
        [
            ("o", 0, model_name),
            ("o", 1, model_text),
            ("o", 2, version),
            ("o", 3, vector([subgraph])),
            ("o", 4, author),
            ("o", 5, licence),
            ("o", 7, parser),
        ]
    )
    b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def with_metadata(model: bytes, card: ModelCard) -> bytes:
    """``model`` with ``card``'s metadata in its buffers and ``labels.txt`` appended."""
    unpacked = schema.ModelT.InitFromPackedBuf(model, 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata_buffer(card), dtype=np.uint8)
    unpacked.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME.encode(), len(unpacked.buffers) - 1
    unpacked.metadata = [m for m in unpacked.metadata or [] if m.name != entry.name] + [entry]
    packed = io.BytesIO(pack(unpacked))
    packed.seek(0, io.SEEK_END)
    with zipfile.ZipFile(packed, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(LABELS_FILE, "\n".join(card.labels) + "\n")
    return packed.getvalue()


def read_labels(model: bytes) -> list[str]:
    """The labels packed with a model by :func:`with_metadata`."""
    with zipfile.ZipFile(io.BytesIO(model)) as archive:
        return archive.read(LABELS_FILE).decode().splitlines()
