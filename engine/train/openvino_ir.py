"""Read an OpenVINO IR (``.xml`` graph + ``.bin`` weights) with the standard library and numpy.

No OpenVINO needed: the ``.xml`` lists layers (id, name, type, ``<data>`` attributes, input and
output ports with their dims) and edges (``from-layer``/``from-port`` -> ``to-layer``/``to-port``);
every ``Const`` layer points into the ``.bin`` with ``offset``/``size`` (bytes), ``element_type``
and ``shape``. :func:`load_ir` returns that as an :class:`IRGraph`; turning a graph into a PyTorch
module is the job of each architecture's own ``from_ir`` (which checks the structure it expects).
:class:`ChainWalker` helps with that: it follows the data path op by op from the ``Parameter``.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# IR element types -> numpy (little-endian, as the .bin is written); packed types (u1, u4, i4, nf4)
# are deliberately absent: reading them as bytes would silently give wrong values
ELEMENT_TYPES: dict[str, np.dtype] = {
    "f16": np.dtype("<f2"), "f32": np.dtype("<f4"), "f64": np.dtype("<f8"),
    "i8": np.dtype("i1"), "i16": np.dtype("<i2"), "i32": np.dtype("<i4"), "i64": np.dtype("<i8"),
    "u8": np.dtype("u1"), "u16": np.dtype("<u2"), "u32": np.dtype("<u4"), "u64": np.dtype("<u8"),
    "boolean": np.dtype("?"),
}


@dataclass(frozen=True)
class IRPort:
    """One port; ``shape`` uses -1 for a dynamic dim (``?`` or ``-1`` in the xml)."""

    id: int
    shape: tuple[int, ...]


@dataclass(frozen=True)
class IRLayer:
    """One ``<layer>``: ``data`` holds its ``<data>`` attributes as strings."""

    id: int
    name: str
    type: str
    version: str
    data: dict[str, str]
    inputs: tuple[IRPort, ...]
    outputs: tuple[IRPort, ...]


@dataclass(frozen=True)
class IREdge:
    from_layer: int
    from_port: int
    to_layer: int
    to_port: int


@dataclass
class IRGraph:
    """A parsed IR. ``constants[layer_id]`` is each Const's value (read-only numpy array)."""

    path: Path
    version: str
    layers: dict[int, IRLayer]
    edges: list[IREdge]
    constants: dict[int, np.ndarray]
    cli_parameters: dict[str, str] = field(default_factory=dict)

    def type_counts(self) -> dict[str, int]:
        return dict(Counter(layer.type for layer in self.layers.values()))

    def of_type(self, layer_type: str) -> list[IRLayer]:
        return [layer for layer in self.layers.values() if layer.type == layer_type]

    def producers(self, layer_id: int) -> list[int]:
        """Layer ids feeding ``layer_id``, in input-port order."""
        incoming = sorted((e.to_port, e.from_layer) for e in self.edges if e.to_layer == layer_id)
        return [src for _, src in incoming]

    def consumers(self, layer_id: int) -> list[int]:
        """Layer ids reading any output of ``layer_id`` (in edge order, without repeats)."""
        return list(dict.fromkeys(e.to_layer for e in self.edges if e.from_layer == layer_id))


def _dims(port: ET.Element) -> tuple[int, ...]:
    return tuple(-1 if d.text is None or d.text.strip() in ("?", "-1") else int(d.text) for d in port.findall("dim"))


def _parse_shape(text: str, where: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"{where}: Const shape {text!r} is not a list of integers") from None


def _read_constant(layer: IRLayer, blob: bytes, where: str) -> np.ndarray:
    try:
        element_type, offset, size = layer.data["element_type"], int(layer.data["offset"]), int(layer.data["size"])
    except KeyError as exc:
        raise ValueError(f"{where}: Const layer {layer.name!r} lacks the {exc.args[0]!r} attribute") from None
    dtype = ELEMENT_TYPES.get(element_type)
    if dtype is None:
        raise ValueError(f"{where}: Const {layer.name!r} has element_type {element_type!r}; "
                         f"supported: {', '.join(ELEMENT_TYPES)}")
    shape = _parse_shape(layer.data.get("shape", ""), where)
    if size != math.prod(shape) * dtype.itemsize:
        raise ValueError(f"{where}: Const {layer.name!r} is {size} bytes, but shape {shape} x {element_type} "
                         f"needs {math.prod(shape) * dtype.itemsize}")
    if offset < 0 or offset + size > len(blob):
        raise ValueError(f"{where}: Const {layer.name!r} reads bytes {offset}..{offset + size} of a "
                         f"{len(blob)}-byte .bin (wrong or truncated weights file?)")
    value = np.frombuffer(blob, dtype, count=math.prod(shape), offset=offset).reshape(shape)
    return value  # frombuffer over bytes is already read-only


def load_ir(xml_path: str | Path, bin_path: str | Path | None = None) -> IRGraph:
    """Parse ``model.xml`` and its weights (``model.bin`` beside it unless ``bin_path`` is given)."""
    xml_path = Path(xml_path)
    bin_path = Path(bin_path) if bin_path is not None else xml_path.with_suffix(".bin")
    for p in (xml_path, bin_path):
        if not p.is_file():
            raise ValueError(f"{p}: no such file (an OpenVINO IR needs both the .xml and the .bin)")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{xml_path}: not valid XML ({exc})") from None
    if root.tag != "net" or root.find("layers") is None or root.find("edges") is None:
        raise ValueError(f"{xml_path}: not an OpenVINO IR (expected <net> with <layers> and <edges>)")

    layers: dict[int, IRLayer] = {}
    for el in root.find("layers"):
        data = el.find("data")
        layer = IRLayer(
            id=int(el.get("id")), name=el.get("name", ""), type=el.get("type", ""), version=el.get("version", ""),
            data=dict(data.attrib) if data is not None else {},
            inputs=tuple(IRPort(int(p.get("id")), _dims(p)) for p in el.findall("input/port")),
            outputs=tuple(IRPort(int(p.get("id")), _dims(p)) for p in el.findall("output/port")),
        )
        if layer.id in layers:
            raise ValueError(f"{xml_path}: layer id {layer.id} appears twice")
        layers[layer.id] = layer
    edges = [IREdge(int(e.get("from-layer")), int(e.get("from-port")), int(e.get("to-layer")), int(e.get("to-port")))
             for e in root.find("edges")]
    for e in edges:
        if e.from_layer not in layers or e.to_layer not in layers:
            raise ValueError(f"{xml_path}: edge {e} refers to a missing layer")

    blob = bin_path.read_bytes()
    constants = {lid: _read_constant(layer, blob, str(xml_path))
                 for lid, layer in layers.items() if layer.type == "Const"}
    cli = root.find("meta_data/cli_parameters")
    cli_parameters = {c.tag: c.get("value", "") for c in cli} if cli is not None else {}
    return IRGraph(xml_path, root.get("version", ""), layers, edges, constants, cli_parameters)


class ChainWalker:
    """Follows the data path of an IR op by op, from its single ``Parameter``.

    ``step(type)`` moves to the one consumer of the current op that has that type (a block input
    also feeds its residual ``Add``, so the type picks the branch) and returns it together with
    the values of its Const inputs. Every visited op is recorded so that :meth:`finish` can refuse
    a graph with ops the caller never mapped. All failures are ValueErrors naming the op.
    """

    def __init__(self, graph: IRGraph) -> None:
        self.graph = graph
        params = graph.of_type("Parameter")
        if len(params) != 1:
            raise ValueError(f"{graph.path}: expected exactly one Parameter (input), found {len(params)}")
        self.current = params[0]
        self.visited: set[int] = {self.current.id}

    def step(self, layer_type: str) -> tuple[IRLayer, list[np.ndarray]]:
        """Move to the next ``layer_type`` op; returns (op, its Const inputs in port order)."""
        candidates = [self.graph.layers[c] for c in self.graph.consumers(self.current.id)]
        matches = [c for c in candidates if c.type == layer_type]
        if len(matches) != 1:
            found = ", ".join(f"{c.type} {c.name!r}" for c in candidates) or "nothing"
            raise ValueError(f"{self.graph.path}: after {self.current.type} {self.current.name!r} expected one "
                             f"{layer_type}, found {found}")
        op = matches[0]
        consts, dynamic = [], []
        for src in self.graph.producers(op.id):
            (consts if src in self.graph.constants else dynamic).append(src)
        self.visited.add(op.id)
        self.current = op
        return op, [self.graph.constants[c] for c in consts]

    def dynamic_inputs(self, layer: IRLayer) -> list[int]:
        """Non-Const producer ids of ``layer`` (a residual Add has two)."""
        return [src for src in self.graph.producers(layer.id) if src not in self.graph.constants]

    def finish(self) -> None:
        """Require that every non-Const op of the graph was visited."""
        left = [layer for layer in self.graph.layers.values()
                if layer.type != "Const" and layer.id not in self.visited]
        if left:
            names = ", ".join(f"{layer.type} {layer.name!r}" for layer in left[:5])
            raise ValueError(f"{self.graph.path}: {len(left)} op(s) not mapped to the module: {names}")
