"""Refuse ONNX models that would make onnxruntime read files other than the model itself.

Why: an ONNX tensor may live in an "external data" file named inside the model.  A bundle's
manifest checksums its files, but a model pointing at an unlisted file would load bytes nobody
verified (and onnxruntime resolves such paths against the working directory when a model is
loaded from memory).  Bundles are self-contained by contract, so any external reference is
refused before onnxruntime sees the model.  This walks the protobuf wire format directly: the
runtime does not depend on the ``onnx`` package.
"""
from __future__ import annotations

# field numbers from onnx.proto3 (stable since ONNX 1.0)
_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_NODE_ATTRIBUTE = 5
_FUNCTION_NODE = 7
_ATTR_T, _ATTR_G, _ATTR_TENSORS, _ATTR_GRAPHS, _ATTR_SPARSE, _ATTR_SPARSES = 5, 6, 10, 11, 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 13, 14
_EXTERNAL = 1
_MAX_DEPTH = 64


class MalformedModel(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise MalformedModel("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview):
    """(field number, wire type, value) of a message; length-delimited values as memoryviews."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise MalformedModel("truncated field")
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = None, pos + 4
        else:
            raise MalformedModel(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise MalformedModel("truncated field")
        yield number, wire, value


def _tensor_is_external(buf: memoryview) -> bool:
    for number, wire, value in _fields(buf):
        if number == _TENSOR_EXTERNAL_DATA and wire == 2:
            return True
        if number == _TENSOR_DATA_LOCATION and wire == 0 and value == _EXTERNAL:
            return True
    return False


def _sparse_is_external(buf: memoryview) -> bool:
    return any(n in (_SPARSE_VALUES, _SPARSE_INDICES) and w == 2 and _tensor_is_external(v)
               for n, w, v in _fields(buf))


def _nodes_external(nodes: list[memoryview], depth: int) -> bool:
    for node in nodes:
        for number, wire, attr in _fields(node):
            if number != _NODE_ATTRIBUTE or wire != 2:
                continue
            for a_num, a_wire, value in _fields(attr):
                if a_wire != 2:
                    continue
                if a_num in (_ATTR_T, _ATTR_TENSORS) and _tensor_is_external(value):
                    return True
                if a_num in (_ATTR_SPARSE, _ATTR_SPARSES) and _sparse_is_external(value):
                    return True
                if a_num in (_ATTR_G, _ATTR_GRAPHS) and _graph_external(value, depth + 1):
                    return True
    return False


def _graph_external(buf: memoryview, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        raise MalformedModel("subgraphs nested too deeply")
    nodes = []
    for number, wire, value in _fields(buf):
        if wire != 2:
            continue
        if number == _GRAPH_INITIALIZER and _tensor_is_external(value):
            return True
        if number == _GRAPH_SPARSE_INITIALIZER and _sparse_is_external(value):
            return True
        if number == _GRAPH_NODE:
            nodes.append(value)
    return _nodes_external(nodes, depth)


def references_external_data(model: bytes) -> bool:
    """True when any tensor of the model (graph, subgraphs, functions) lives in another file.

    onnxruntime refuses an external tensor without a ``location`` entry ("model format error!
    Missing 'location'", checked with onnxruntime 1.31), so a model whose bytes never contain
    ``location`` cannot name a file: one memchr-speed scan then replaces the walk (~10 ms of
    every cold start for a 4.5 MB model).  Any occurrence, even inside weights, means a walk.
    """
    if b"location" not in model:
        return False
    buf = memoryview(model)
    for number, wire, value in _fields(buf):
        if wire != 2:
            continue
        if number == _MODEL_GRAPH and _graph_external(value, 0):
            return True
        if number == _MODEL_FUNCTIONS:
            nodes = [v for n, w, v in _fields(value) if n == _FUNCTION_NODE and w == 2]
            if _nodes_external(nodes, 0):
                return True
    return False
