"""Content sniffing: what a file really is, read from its first bytes or its zip members.

Nothing here imports a framework; the Session of the detected format does the full read and
reports truncation or corruption.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# A Python import path and a callable in it, e.g. "mypkg.models:build_resnet".
FACTORY_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def sniff(path: Path) -> tuple[str | None, str]:
    """Return (format name or None, a short description of the content for messages)."""
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "savedmodel", "a TensorFlow SavedModel folder"
        if any(path.glob("*.prototxt")) and any(path.glob("*.caffemodel")):
            return "caffe", "a folder with a Caffe prototxt and caffemodel"
        return None, "a folder without saved_model.pb or a Caffe prototxt + caffemodel"
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head:
        return None, "an empty file"
    if head[4:8] == b"TFL3":
        return "tflite", "a TFLite flatbuffer"
    if head.startswith(HDF5_MAGIC):
        return "keras", "an HDF5 file"
    if head.startswith(b"PK"):
        return _sniff_zip(path)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pytorch", "a pickle (legacy torch.save format)"
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")):
        return None, "an HTML/XML page"
    if _looks_like_onnx(head):
        return "onnx", "an ONNX protobuf"
    if path.suffix == ".caffemodel" and _looks_like_caffemodel(head):
        return "caffe", "a Caffe NetParameter protobuf"
    if _is_text(head):
        if _looks_like_prototxt(path):
            return "caffe", "a Caffe network definition"
        return None, "a text file"
    return None, "unrecognised binary data"


def _sniff_zip(path: Path) -> tuple[str | None, str]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return None, "a damaged or truncated zip archive"
    if {"config.json", "metadata.json"} <= set(names):
        return "keras", "a Keras v3 archive"
    kind = torch_archive_kind(names)
    if kind is not None:
        return "pytorch", {"exported_program": "a torch.export archive (.pt2)", "torchscript": "a TorchScript archive",
                           "pickle": "a torch.save archive"}[kind]
    return None, "a zip archive of unknown content"


def torch_archive_kind(names: list[str]) -> str | None:
    """'exported_program', 'torchscript', 'pickle' (torch.save) or None, from a zip's member names."""
    if any(n.endswith("serialized_exported_program.json") or n.endswith("/models/model.json")
           or n.endswith("archive_format") for n in names):
        return "exported_program"
    if any("/code/" in n for n in names) and any(n.endswith("/data.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        return "pickle"
    return None


def _looks_like_onnx(head: bytes) -> bool:
    # A serialized ModelProto starts with field 1 (ir_version, varint), small and positive;
    # protobuf writers emit fields in number order, so this is the first byte of every ONNX file.
    return len(head) > 2 and head[0] == 0x08 and 1 <= head[1] <= 30


def _looks_like_caffemodel(head: bytes) -> bool:
    # NetParameter fields in number order: name (1), legacy layers (2), inputs (3, 4), ...,
    # layer (100, whose tag is the varint a2 06).
    return head[:1] in (b"\x0a", b"\x12", b"\x1a", b"\x20") or head[:2] == b"\xa2\x06"


_PROTOTXT_KEYS = re.compile(rb"^\s*(name|layers?|input|input_dim|input_shape|force_backward|state)\s*[:{]", re.M)


def _looks_like_prototxt(path: Path) -> bool:
    with open(path, "rb") as handle:
        text = handle.read(4096)
    return bool(_PROTOTXT_KEYS.search(text)) and b"layer" in text


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
