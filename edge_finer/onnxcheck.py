"""Refuse ONNX models that would make onnxruntime read files other than the model itself, or
do more than a bundle model does (:func:`check_model`).

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


# -- what a bundle model may contain -------------------------------------------------------
#
# Why: a checksummed bundle proves only that its author's bytes arrived intact; the author may
# be hostile.  A legal ONNX graph can still ask onnxruntime for gigabytes (a ConstantOfShape or
# Expand to a huge constant shape, a Tile, a Loop with a huge trip count), for code outside the
# runtime (custom-op domains) or for semantics this runtime does not know (opsets from the
# future).  The pipeline emits a small, known set of operators, so anything else is refused at
# load, before onnxruntime parses the graph (docs/bundle-format.md lists the set).

#: Every operator the build pipeline's exported and quantized models contain: the union over
#: the shipped bundles, the test bundles and the pipeline's test builds (bert, xlm-roberta and
#: cnn students; quantize optimize = none | basic | transformer), listed with onnx 1.x.
ALLOWED_OPS: frozenset[tuple[str, str]] = frozenset(
    [("", op) for op in (
        "Add", "Cast", "Concat", "Constant", "ConstantOfShape", "CumSum", "DequantizeLinear", "Div",
        "DynamicQuantizeLinear", "Equal", "Erf", "Expand", "Gather", "Identity", "LayerNormalization",
        "MatMul", "MatMulInteger", "Mul", "Not", "Pad", "Reshape", "Shape", "Sigmoid", "Slice", "Softmax",
        "Sqrt", "Sub", "Transpose", "Unsqueeze", "Where")]
    # quantize optimize = "transformer": onnxruntime's fused kernels
    + [("com.microsoft", op) for op in ("BiasGelu", "QAttention", "QEmbedLayerNormalization",
                                         "SkipLayerNormalization")])
#: The default ONNX operator set versions accepted (the pipeline exports 18 by default;
#: onnxruntime >= 1.18 runs up to 21).
MIN_OPSET, MAX_OPSET = 13, 21
#: Operator set domains a model may declare (onnx exporters and onnxruntime's quantizer
#: declare all of these even when no node uses them), with the highest version accepted.
KNOWN_DOMAINS = {"": MAX_OPSET, "ai.onnx": MAX_OPSET, "ai.onnx.ml": 5, "ai.onnx.training": 1,
                 "ai.onnx.preview": 1, "ai.onnx.preview.training": 1, "com.microsoft": 1,
                 "com.microsoft.experimental": 1, "com.microsoft.nchwc": 1, "org.pytorch.aten": 1}
#: ONNX IR versions accepted (onnx 1.10 wrote 8; onnx 1.16 writes 10).
MIN_IR, MAX_IR = 7, 10
#: Largest tensor a constant shape may ask for (elements): ~256 MB of float32.  The biggest
#: tensor a pipeline model builds is batch x tokens x hidden, well under a million elements.
MAX_CONSTANT_ELEMENTS = 64 * 2**20
#: A bundle model larger than this is refused before it is read (the shipped ones are ~4 MB;
#: a medium student unquantized is under 100 MB).
MAX_MODEL_BYTES = 512 * 2**20
#: Model inputs the runtime feeds, with their rank; all are int64.
INPUT_RANKS = {"input_ids": 2, "attention_mask": 2, "token_type_ids": 2, "word_features": 3}
_INT64, _FLOAT = 7, 1

# more field numbers of onnx.proto3
_MODEL_IR, _MODEL_OPSET = 1, 8
_OPSET_DOMAIN, _OPSET_VERSION = 1, 2
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP, _NODE_DOMAIN = 1, 2, 4, 7
_GRAPH_INPUT, _GRAPH_OUTPUT = 11, 12
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR = 1
_TT_ELEM, _TT_SHAPE = 1, 2
_SHAPE_DIM = 1
_DIM_VALUE, _DIM_PARAM = 1, 2
_TENSOR_DIMS, _TENSOR_TYPE, _TENSOR_INT64, _TENSOR_NAME, _TENSOR_RAW = 1, 2, 7, 8, 9
_ATTR_NAME = 1


class HostileModel(ValueError):
    """A well-formed model that asks for more than a bundle model may (message: one line)."""


def _str(value) -> str:
    return bytes(value).decode("utf-8", "replace")


def _shown(text: str, limit: int = 60) -> str:
    """A name from the model, safe to print on one line (no control characters, bounded)."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in text[:limit])
    return repr(clean + ("…" if len(text) > limit else ""))


def _ints(wire: int, value) -> list[int]:
    """A repeated int64 field: one varint, or a packed run of them."""
    if wire == 0:
        return [value - (1 << 64) if value >= 1 << 63 else value]
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(v - (1 << 64) if v >= 1 << 63 else v)
    return out


def _value_info(buf) -> tuple[str, int | None, list[int | str | None] | None]:
    """``(name, element type, dims)`` of a graph input or output; dims None: no shape."""
    name, elem, dims = "", None, None
    for number, wire, value in _fields(buf):
        if number == _VALUE_NAME and wire == 2:
            name = _str(value)
        elif number == _VALUE_TYPE and wire == 2:
            for t_num, t_wire, t_val in _fields(value):
                if t_wire != 2:
                    continue
                if t_num != _TYPE_TENSOR:
                    elem = -t_num  # a sequence, map, optional or sparse value: not a tensor
                    continue
                for f_num, f_wire, f_val in _fields(t_val):
                    if f_num == _TT_ELEM and f_wire == 0:
                        elem = f_val
                    elif f_num == _TT_SHAPE and f_wire == 2:
                        dims = []
                        for d_num, d_wire, d_val in _fields(f_val):
                            if d_num != _SHAPE_DIM or d_wire != 2:
                                continue
                            dim: int | str | None = None
                            for x_num, x_wire, x_val in _fields(d_val):
                                if x_num == _DIM_VALUE and x_wire == 0:
                                    dim = x_val
                                elif x_num == _DIM_PARAM and x_wire == 2:
                                    dim = _str(x_val)
                            dims.append(dim)
    return name, elem, dims


def _constant_ints(buf) -> tuple[str, list[int] | None]:
    """``(name, values)`` of an int64 tensor (None when it is not a small int64 tensor)."""
    import numpy as np

    name, dtype, raw, ints, count = "", None, None, [], 1
    for number, wire, value in _fields(buf):
        if number == _TENSOR_NAME and wire == 2:
            name = _str(value)
        elif number == _TENSOR_TYPE and wire == 0:
            dtype = value
        elif number == _TENSOR_DIMS:
            for d in _ints(wire, value):
                count *= max(d, 0)
        elif number == _TENSOR_RAW and wire == 2:
            raw = value
        elif number == _TENSOR_INT64:
            ints.extend(_ints(wire, value))
    if dtype != _INT64 or count > 16:
        return name, None
    if raw is not None:
        if len(raw) != 8 * count:
            return name, None
        return name, np.frombuffer(bytes(raw), dtype="<i8").tolist()
    return name, ints if len(ints) == count else None


def _node(buf) -> tuple[str, str, list[str], list[str], list]:
    domain, op, inputs, outputs, attrs = "", "", [], [], []
    for number, wire, value in _fields(buf):
        if wire != 2:
            continue
        if number == _NODE_OP:
            op = _str(value)
        elif number == _NODE_DOMAIN:
            domain = _str(value)
        elif number == _NODE_INPUT:
            inputs.append(_str(value))
        elif number == _NODE_OUTPUT:
            outputs.append(_str(value))
        elif number == _NODE_ATTRIBUTE:
            attrs.append(value)
    return domain, op, inputs, outputs, attrs


def _check_graph(graph) -> tuple[list, list]:
    """Refuse operators off the allow-list and constant shapes that ask for too much; return
    the graph's declared inputs (less initializers) and outputs."""
    nodes, inputs, outputs, constants = [], [], [], {}
    for number, wire, value in _fields(graph):
        if wire != 2:
            continue
        if number == _GRAPH_NODE:
            nodes.append(_node(value))
        elif number == _GRAPH_INITIALIZER:
            name, ints = _constant_ints(value)
            constants[name] = ints
        elif number == _GRAPH_SPARSE_INITIALIZER:
            raise HostileModel("the model has sparse initializers, which the pipeline never writes")
        elif number == _GRAPH_INPUT:
            inputs.append(_value_info(value))
        elif number == _GRAPH_OUTPUT:
            outputs.append(_value_info(value))
    for domain, op, ins, outs, attrs in nodes:
        if domain == "ai.onnx":
            domain = ""
        if (domain, op) not in ALLOWED_OPS:
            where = f" of domain {_shown(domain)}" if domain else ""
            raise HostileModel(f"the model uses operator {_shown(op)}{where}, which no edge-finer pipeline "
                               "emits (allowed operators: docs/bundle-format.md)")
        if op == "Constant":
            for attr in attrs:
                fields = {n: v for n, w, v in _fields(attr) if w == 2}
                if _ATTR_T in fields and outs:
                    constants[outs[0]] = _constant_ints(fields[_ATTR_T])[1]
        shape = (ins[1] if op == "Expand" and len(ins) > 1 else ins[0] if op == "ConstantOfShape" and ins
                 else None)
        if shape is not None and constants.get(shape) is not None:
            size = 1
            for d in constants[shape]:
                size *= max(d, 1)
            if size > MAX_CONSTANT_ELEMENTS:
                raise HostileModel(f"the model's {op} node builds a tensor of {size:,} elements (shape "
                                   f"{constants[shape]}); a bundle model never needs more than "
                                   f"{MAX_CONSTANT_ELEMENTS:,}")
    names = {n for n in constants}
    return [i for i in inputs if i[0] not in names], outputs


def check_model(model: bytes, labels: int | None = None, feature_kinds: int | None = None) -> None:
    """Refuse a model that is not shaped like one the pipeline builds, with one line saying why.

    Checked without onnxruntime: IR and operator set versions within bounds, declared operator
    set domains known, every node's operator on :data:`ALLOWED_OPS`, no model-local functions,
    constant shapes of ``ConstantOfShape``/``Expand`` under :data:`MAX_CONSTANT_ELEMENTS`, the
    inputs the runtime feeds (int64, right rank) and exactly one float output of rank 3 whose
    last dimension, when fixed, is ``labels``; ``word_features`` must have ``feature_kinds``
    columns when both are given.  Raises :class:`MalformedModel` or :class:`HostileModel`.
    """
    if len(model) > MAX_MODEL_BYTES:
        raise HostileModel(f"the model is {len(model) / 2**20:.0f} MB; a bundle model is at most "
                           f"{MAX_MODEL_BYTES // 2**20} MB")
    buf = memoryview(model)
    ir, opsets, graph = None, {}, None
    for number, wire, value in _fields(buf):
        if number == _MODEL_IR and wire == 0:
            ir = value
        elif number == _MODEL_OPSET and wire == 2:
            domain, version = "", 0
            for o_num, o_wire, o_val in _fields(value):
                if o_num == _OPSET_DOMAIN and o_wire == 2:
                    domain = _str(o_val)
                elif o_num == _OPSET_VERSION and o_wire == 0:
                    version = o_val
            opsets[domain] = version
        elif number == _MODEL_GRAPH and wire == 2:
            graph = value
        elif number == _MODEL_FUNCTIONS and wire == 2:
            raise HostileModel("the model defines its own functions, which the pipeline never writes")
    if graph is None:
        raise MalformedModel("no graph")
    if ir is None or not MIN_IR <= ir <= MAX_IR:
        raise HostileModel(f"the model's ONNX IR version {ir} is outside the {MIN_IR}-{MAX_IR} this "
                           "edge-finer reads")
    for domain, version in opsets.items():
        if domain not in KNOWN_DOMAINS:
            raise HostileModel(f"the model declares operator set domain {_shown(domain)}; custom operators "
                               "are not allowed in a bundle")
        if version > KNOWN_DOMAINS[domain]:
            raise HostileModel(f"the model needs operator set {_shown(domain or 'ai.onnx')} version {version}; "
                               f"this edge-finer runs up to {KNOWN_DOMAINS[domain]}")
    opset = opsets.get("", opsets.get("ai.onnx"))
    if opset is None or opset < MIN_OPSET:
        raise HostileModel(f"the model's ONNX operator set {opset} is older than the {MIN_OPSET}-{MAX_OPSET} "
                           "this edge-finer runs; rebuild the bundle")
    inputs, outputs = _check_graph(graph)
    names = [name for name, _, _ in inputs]
    for name, elem, dims in inputs:
        if name not in INPUT_RANKS:
            raise HostileModel(f"the model takes an input {_shown(name)}; a bundle model takes "
                               f"{', '.join(INPUT_RANKS)} only")
        if elem != _INT64 or (dims is not None and len(dims) != INPUT_RANKS[name]):
            raise HostileModel(f"the model's input {name} is not an int64 tensor of rank {INPUT_RANKS[name]}")
    if "input_ids" not in names or len(set(names)) != len(names):
        raise HostileModel(f"the model's inputs {names} lack input_ids or repeat a name")
    if feature_kinds is not None:
        feats = next((d for n, _, d in inputs if n == "word_features"), None)
        if feats and isinstance(feats[-1], int) and feats[-1] != feature_kinds:
            raise HostileModel(f"the model's word_features input has {feats[-1]} columns; the manifest's "
                               f"features list {feature_kinds} kinds")
    if len(outputs) != 1:
        raise HostileModel(f"the model has {len(outputs)} outputs; a bundle model has one (the logits)")
    _, elem, dims = outputs[0]
    if elem != _FLOAT or (dims is not None and len(dims) != 3):
        raise HostileModel("the model's output is not a float32 tensor (batch, tokens, labels)")
    if labels is not None and dims and isinstance(dims[-1], int) and dims[-1] != labels:
        raise HostileModel(f"the model outputs {dims[-1]} labels but the manifest lists {labels}")
