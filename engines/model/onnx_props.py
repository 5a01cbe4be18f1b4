"""The ``metadata_props`` of an ONNX file, read without the ``onnx`` package.

An ONNX file is one protobuf ``ModelProto``; its metadata is the repeated field 14 of
``{key: 1, value: 2}`` string pairs. Only the top-level fields are walked: the graph
(field 7, nearly all of the file) and every other field are skipped by their length, so
checking which weights an ONNX file was exported from reads a few bytes, not the model.
"""

from __future__ import annotations

from typing import BinaryIO

#: ModelProto.metadata_props, StringStringEntryProto.key and .value
METADATA_FIELD, KEY_FIELD, VALUE_FIELD = 14, 1, 2
#: the longest metadata entry read (kdcam's own are under 100 bytes)
MAX_ENTRY_BYTES = 1 << 20


class NotOnnx(ValueError):
    """The bytes are not a protobuf message this reader can walk."""


def _varint(read: BinaryIO) -> int | None:
    """The next varint, or None at the end of the input."""
    value = shift = 0
    while True:
        byte = read.read(1)
        if not byte:
            if shift:
                raise NotOnnx("cut short inside a varint")
            return None
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise NotOnnx("a varint longer than 10 bytes")


def _fields(data: bytes) -> dict[int, str]:
    """The string fields of one small embedded message (a metadata entry)."""
    out: dict[int, str] = {}
    pos = 0
    while pos < len(data):
        tag, pos = _varint_at(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 2:
            size, pos = _varint_at(data, pos)
            if number in (KEY_FIELD, VALUE_FIELD):
                out[number] = data[pos:pos + size].decode("utf-8", "replace")
            pos += size
        elif wire == 0:
            _, pos = _varint_at(data, pos)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise NotOnnx(f"wire type {wire} in a metadata entry")
    if pos != len(data):
        raise NotOnnx("a metadata entry cut short")
    return out


def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise NotOnnx("a bad varint in a metadata entry")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def metadata_props(f: BinaryIO) -> dict[str, str]:
    """The ``metadata_props`` of the ONNX model read from ``f`` (a binary file, at its
    start); raises NotOnnx for bytes that are not a protobuf message."""
    size = f.seek(0, 2)
    f.seek(0)
    props: dict[str, str] = {}
    while (tag := _varint(f)) is not None:
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise NotOnnx("field number 0")
        if wire == 0:
            if _varint(f) is None:
                raise NotOnnx("cut short after a tag")
        elif wire in (1, 5):
            f.seek(8 if wire == 1 else 4, 1)
        elif wire == 2:
            length = _varint(f)
            if length is None or f.tell() + length > size:
                raise NotOnnx("a field longer than the file")
            if number == METADATA_FIELD and length <= MAX_ENTRY_BYTES:
                entry = _fields(f.read(length))
                props[entry.get(KEY_FIELD, "")] = entry.get(VALUE_FIELD, "")
            else:
                f.seek(length, 1)
        else:
            raise NotOnnx(f"wire type {wire} at the top level")
        if f.tell() > size:
            raise NotOnnx("cut short")
    return props
