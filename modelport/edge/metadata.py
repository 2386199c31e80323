"""TFLite Model Metadata, written in the standard schema (tflite-support's ``metadata_schema.fbs``,
file identifier ``M001``) so that the tooling apps use (MediaPipe Tasks, ML Kit, Android Studio's
ML binding) reads it: tensor names and descriptions, image normalization, and labels packed into
the file as a ``TENSOR_AXIS_LABELS`` associated file.

The metadata is a flatbuffer of its own, stored in a model buffer that the model's ``metadata``
list names ``TFLITE_METADATA``; associated files are a zip archive appended to the model file
(the flatbuffer ignores bytes past its end, zip readers find their directory at the end).
tflite-support, which used to write this, is unmaintained and pins protobuf < 4, so the tables
are built here with ``flatbuffers`` by their field numbers in the schema.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

import numpy as np

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # every table and field written here exists since schema 1.0.0

# Enum and union values of metadata_schema.fbs.
TENSOR_AXIS_LABELS = 2  # AssociatedFileType
COLOR_SPACE = {"RGB": 1, "GRAYSCALE": 2}  # ColorSpaceType
FEATURE_PROPERTIES, IMAGE_PROPERTIES = 1, 2  # ContentProperties
NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions


@dataclass
class TensorInfo:
    """What the metadata says of one input or output tensor."""
    name: str
    description: str = ""
    image: str | None = None  # "RGB" or "GRAYSCALE" for an image tensor
    mean: list[float] | None = None  # (x - mean) / std before the model, per channel or one value
    std: list[float] | None = None
    labels: str | None = None  # the associated labels file's name


@dataclass
class ModelInfo:
    name: str
    description: str = ""
    version: str = ""
    author: str = ""
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)


def build_metadata(info: ModelInfo) -> bytes:
    """The ModelMetadata flatbuffer for ``info``."""
    import flatbuffers
    b = flatbuffers.Builder(1024)

    def string(text):
        return b.CreateString(text) if text else None

    def table(slots: list[tuple[int, str, object]]) -> int:
        """A table from (slot, kind, value): kind 'offset', 'uint8' or 'uint32'; None values skipped."""
        b.StartObject(max(slot for slot, _, _ in slots) + 1 if slots else 0)
        for slot, kind, value in slots:
            if value is None:
                continue
            if kind == "offset":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "uint8":
                b.PrependUint8Slot(slot, value, 0)
            else:
                b.PrependUint32Slot(slot, value, 0)
        return b.EndObject()

    def offsets(items: list[int]) -> int | None:
        if not items:
            return None
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    def floats(values) -> int:
        b.StartVector(4, len(values), 4)
        for value in reversed(values):
            b.PrependFloat32(float(value))
        return b.EndVector()

    def associated_file(name: str, description: str) -> int:
        # AssociatedFile: name 0, description 1, type 2, locale 3
        name_o, description_o = string(name), string(description)
        return table([(0, "offset", name_o), (1, "offset", description_o), (2, "uint8", TENSOR_AXIS_LABELS)])

    def tensor(t: TensorInfo) -> int:
        name_o, description_o = string(t.name), string(t.description)
        if t.image:  # Content.content_properties = ImageProperties(color_space)
            properties, kind = table([(0, "uint8", COLOR_SPACE[t.image])]), IMAGE_PROPERTIES
        else:
            properties, kind = table([]), FEATURE_PROPERTIES
        content = table([(0, "uint8", kind), (1, "offset", properties)])  # union: type slot, value slot
        units = None
        if t.mean is not None and t.std is not None:
            mean_o, std_o = floats(t.mean), floats(t.std)
            normalization = table([(0, "offset", mean_o), (1, "offset", std_o)])
            units = offsets([table([(0, "uint8", NORMALIZATION_OPTIONS), (1, "offset", normalization)])])
        files = offsets([associated_file(t.labels, "labels of the output's last axis, one per line")]) \
            if t.labels else None
        # TensorMetadata: name 0, description 1, dimension_names 2, content 3, process_units 4, stats 5,
        # associated_files 6
        return table([(0, "offset", name_o), (1, "offset", description_o), (3, "offset", content),
                      (4, "offset", units), (6, "offset", files)])

    inputs = offsets([tensor(t) for t in info.inputs])
    outputs = offsets([tensor(t) for t in info.outputs])
    # SubGraphMetadata: name 0, description 1, input_tensor_metadata 2, output_tensor_metadata 3
    subgraph = table([(0, "offset", string(info.name)), (2, "offset", inputs), (3, "offset", outputs)])
    subgraphs = offsets([subgraph])
    name_o, description_o, version_o = string(info.name), string(info.description), string(info.version)
    author_o, parser_o = string(info.author), string(MIN_PARSER_VERSION)
    # ModelMetadata: name 0, description 1, version 2, subgraph_metadata 3, author 4, license 5,
    # associated_files 6, min_parser_version 7
    root = table([(0, "offset", name_o), (1, "offset", description_o), (2, "offset", version_o),
                  (3, "offset", subgraphs), (4, "offset", author_o), (7, "offset", parser_o)])
    b.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def attach(model: bytes, metadata: bytes, associated: dict[str, bytes] | None = None) -> bytes:
    """``model`` with ``metadata`` stored as its TFLITE_METADATA buffer and ``associated`` files
    appended as a zip archive (an existing entry of that name is replaced)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    flat = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    flat.buffers = flat.buffers or []
    flat.metadata = [m for m in (flat.metadata or []) if m.name not in (METADATA_NAME, METADATA_NAME.encode())]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, np.uint8)
    flat.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(flat.buffers) - 1
    flat.metadata.append(entry)
    builder = flatbuffers.Builder(len(model) + len(metadata) + 1024)
    builder.Finish(flat.Pack(builder), file_identifier=b"TFL3")
    out = io.BytesIO(bytes(builder.Output()))
    if associated:
        out.seek(0, io.SEEK_END)
        with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
            for name, data in associated.items():
                archive.writestr(name, data)
    return out.getvalue()
