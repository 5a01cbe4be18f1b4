"""The ``metadata_props`` of an ONNX file, read without the ``onnx`` package.

An ONNX file is one protobuf ``ModelProto``; its metadata is its repeated field 14, each a
``{key: 1, value: 2}`` pair of strings. protobuf itself (a dependency of ONNX Runtime, and of
kdcam's CPU install) parses the file as an empty message, which keeps every field as an
unknown one (``google.protobuf.unknown_fields``), so no ONNX schema is needed: checking which
weights an ONNX file was exported from needs neither the onnx package nor PyTorch.
"""

from __future__ import annotations

from typing import BinaryIO

#: ModelProto.metadata_props, StringStringEntryProto.key and .value
METADATA_FIELD, KEY_FIELD, VALUE_FIELD = 14, 1, 2
#: the largest ONNX file read for its metadata (kdcam's students are about 100 KB)
MAX_ONNX_BYTES = 64 << 20


class NotOnnx(ValueError):
    """The bytes are not a protobuf message (or too large to be one of kdcam's graphs)."""


def _unknown_fields(data: bytes):
    from google.protobuf import empty_pb2
    from google.protobuf.message import DecodeError
    from google.protobuf.unknown_fields import UnknownFieldSet

    message = empty_pb2.Empty()
    try:
        message.ParseFromString(data)
        return list(UnknownFieldSet(message))
    except (DecodeError, RuntimeError, ValueError) as err:
        raise NotOnnx(f"not a protobuf message ({err})") from None


def metadata_props(f: BinaryIO) -> dict[str, str]:
    """The ``metadata_props`` of the ONNX model read from ``f`` (a binary file, at its
    start); raises NotOnnx for bytes that are not a protobuf message, or past MAX_ONNX_BYTES."""
    size = f.seek(0, 2)
    if size > MAX_ONNX_BYTES:
        raise NotOnnx(f"{size} bytes, more than the {MAX_ONNX_BYTES} an ONNX graph of kdcam's may have")
    f.seek(0)
    props: dict[str, str] = {}
    for field in _unknown_fields(f.read()):
        if field.field_number != METADATA_FIELD:
            continue
        if not isinstance(field.data, bytes):
            raise NotOnnx("a metadata entry that is not a message")
        entry = {}
        for part in _unknown_fields(field.data):
            if part.field_number in (KEY_FIELD, VALUE_FIELD):
                if not isinstance(part.data, bytes):
                    raise NotOnnx("a metadata key or value that is not a string")
                entry[part.field_number] = part.data.decode("utf-8", "replace")
        props[entry.get(KEY_FIELD, "")] = entry.get(VALUE_FIELD, "")
    return props
