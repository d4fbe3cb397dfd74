"""edgec's own ahead-of-time C generator.

Graph -> model.c / model.h: every layer becomes one specialized C function whose
shapes, strides and requantization constants are literals; weights are ``const``
arrays (flash); activations live in one static arena planned by
:mod:`edgec.memory`; graph inputs are read from the caller's buffers and graph
outputs written straight into the caller's buffers.
"""
from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass, field

import numpy as np

from .. import cgen, dtypes, memory, ops
from ..errors import EdgecError, UnsupportedError
from ..graph import Graph, Node
from ..templating import render
from . import sparse

ALIGN = 16


@dataclass
class Location:
    kind: str          # "arena" | "input" | "output" | "const"
    index: int = 0     # arena offset, input/output index
    symbol: str = ""   # const symbol


@dataclass
class Layer:
    index: int
    node: Node
    func: str
    code: str
    args: list[str]
    out_bytes: list[int] = field(default_factory=list)


class ConstPool:
    """Constant arrays of the bundle, deduplicated by content."""

    def __init__(self):
        self.arrays: list[tuple[str, str, np.ndarray, int]] = []  # symbol, dtype, data, layer
        self._by_key: dict[tuple, str] = {}

    def add(self, data: np.ndarray, dtype: str, hint: str, layer: int) -> str:
        data = np.ascontiguousarray(np.asarray(data).astype(dtypes.np_dtype(dtype)))
        key = (dtype, data.shape, hashlib.sha256(data.tobytes()).hexdigest())
        if key in self._by_key:
            return self._by_key[key]
        sym = f"edgec_l{layer}_{hint}" if layer >= 0 else f"edgec_{hint}"
        base, k = sym, 1
        while any(s == sym for s, *_ in self.arrays):
            sym = f"{base}_{k}"
            k += 1
        self.arrays.append((sym, dtype, data, layer))
        self._by_key[key] = sym
        return sym

    def render(self) -> str:
        out = []
        for sym, dtype, data, layer in self.arrays:
            n = max(int(data.size), 1)
            body = cgen.array_body(data if data.size else np.zeros(1, data.dtype), dtype)
            out.append(f"static const {dtypes.c_type(dtype)} {sym}[{n}] EDGEC_ALIGNED(8) = {body};\n")
        return "\n".join(out)

    def bytes_by_layer(self) -> dict[int, int]:
        res: dict[int, int] = {}
        for _, dtype, data, layer in self.arrays:
            res[layer] = res.get(layer, 0) + max(int(data.size), 1) * dtypes.itemsize(dtype)
        return res


class KernelContext:
    """What an op's ``emit`` sees: its node, the C names of its operands, and a
    way to put constants in flash."""

    def __init__(self, g: Graph, node: Node, layer: int, pool: ConstPool, options: dict):
        self.g = g
        self.node = node
        self.layer = layer
        self.pool = pool
        self.options = options
        self.params: list[tuple[str, str, bool]] = []  # (name, ctype, is_output)
        self.helpers: set[str] = set()  # templates/runtime/<name>.c.j2 this kernel needs
        self.functions: list[str] = []  # file-scope helper functions of this kernel
        self.report: dict = {}  # extra facts for this layer's entry in report.json
        self._in_names: dict[int, str] = {}
        for i, name in enumerate(node.inputs):
            if not name:
                continue
            t = g.tensors[name]
            if not t.is_const:
                self._in_names[i] = f"x{i}"
                self.params.append((f"x{i}", dtypes.c_type(t.dtype), False))
        for j, name in enumerate(node.outputs):
            if name:
                self.params.append((f"y{j}", dtypes.c_type(g.tensors[name].dtype), True))

    # operands
    def x(self, i: int) -> str:
        """C name of input i: a parameter, or (constants) an array in flash,
        added to the bundle only when a kernel asks for it."""
        if i not in self._in_names:
            t = self.g.tensors[self.node.inputs[i]]
            self._in_names[i] = self.pool.add(t.data, t.dtype, f"c{i}", self.layer)
        return self._in_names[i]

    def y(self, j: int = 0) -> str:
        return f"y{j}"

    def tin(self, i: int):
        return self.g.tensors[self.node.inputs[i]]

    def tout(self, j: int = 0):
        return self.g.tensors[self.node.outputs[j]]

    def has_input(self, i: int) -> bool:
        return i < len(self.node.inputs) and bool(self.node.inputs[i])

    def need(self, helper: str) -> None:
        self.helpers.add(helper)

    def const(self, data, dtype: str, hint: str = "w") -> str:
        return self.pool.add(np.asarray(data), dtype, hint, self.layer)

    def render(self, template: str, **kw) -> str:
        return render(f"kernels/{template}", k=self, **kw)

    def function(self, suffix: str) -> str:
        """Name of a file-scope helper function of this layer (``edgec_l<N>_<suffix>``);
        its definition goes to :meth:`add_function`."""
        return f"edgec_l{self.layer}_{re.sub(r'[^a-z0-9_]', '', suffix.lower())[:40]}"

    def add_function(self, code: str) -> None:
        """A static helper function (or table) placed before this layer's kernel."""
        self.functions.append(code)


def _func_name(layer: int, op: str) -> str:
    return f"edgec_l{layer}_{re.sub(r'[^a-z0-9]', '', op.lower())[:24]}"


def assign_buffers(g: Graph) -> tuple[dict[str, str], dict[str, Location]]:
    """Resolve views to their root tensor and give every root a location.
    Graph outputs that would share memory with an input, a constant or another
    output get a Copy node first (:func:`materialize_outputs`)."""
    root = {}
    for name, t in g.tensors.items():
        root[name] = name
    for n in g.nodes:
        if ops.get(n.op).view and not g.tensors[n.inputs[0]].is_const:
            root[n.outputs[0]] = root[n.inputs[0]]
    loc: dict[str, Location] = {}
    for name, t in g.tensors.items():
        if t.is_const and root[name] == name:
            loc[name] = Location("const")
    for i, name in enumerate(g.inputs):
        loc[root[name]] = Location("input", i)
    for j, name in enumerate(g.outputs):
        r = root[name]
        if r in loc:
            raise AssertionError("output shares a buffer; materialize_outputs missed it")
        loc[r] = Location("output", j)
    return root, loc


def materialize_outputs(g: Graph) -> None:
    """Give every graph output a buffer of its own (Copy where it aliases)."""
    root = {name: name for name in g.tensors}
    for n in g.nodes:
        if ops.get(n.op).view and not g.tensors[n.inputs[0]].is_const:
            root[n.outputs[0]] = root[n.inputs[0]]
    claimed = {root[i] for i in g.inputs}
    for j, name in enumerate(list(g.outputs)):
        t = g.tensors[name]
        r = root[name]
        if t.is_const or r in claimed:
            new = g.unique_name(name + "_out")
            g.add_tensor(new, t.shape, t.dtype, quant=t.quant, origin=t.origin)
            g.nodes.append(Node("Copy", [name], [new], {}, "output_copy"))
            g.outputs[j] = new
            claimed.add(new)
        else:
            claimed.add(r)


@dataclass
class NativeResult:
    model_c: str
    model_h: str
    arena_size: int
    lower_bound: int
    layers: list[dict]
    weights_bytes: int
    plan_order: str


def check_supported(g: Graph) -> None:
    problems = []
    needs = []
    for n in g.nodes:
        op = ops.REGISTRY.get(n.op)
        if op is None:
            problems.append(n.op)
            continue
        reason = op.check(g, n)
        if reason:
            problems.append(reason)
            t = getattr(reason, "tensor", "")
            if t and t in g.tensors:
                needs += g.input_ancestors(t)
    # empty tensors are fine where nothing computes on them (copies of nothing)
    used = {i for n in g.nodes if n.op != "Copy" for i in list(n.inputs) + list(n.outputs) if i}
    for name, t in g.tensors.items():
        if not t.is_const and t.size == 0 and name in used:
            problems.append(f"zero-sized tensor ({list(t.shape)})")
            break
    if problems:
        raise UnsupportedError(problems, needs_const=needs)


def generate(g: Graph, prefix: str, options: dict | None = None) -> NativeResult:
    options = dict(options or {})
    g = g.copy()
    g.fold_constants = False
    materialize_outputs(g)
    g.topo_sort()
    g.validate()
    check_supported(g)

    root, loc = assign_buffers(g)
    # lifetimes of arena roots, in steps (node indices)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for step, n in enumerate(g.nodes):
        for o in n.outputs:
            if o:
                r = root[o]
                first.setdefault(r, step)
                last[r] = max(last.get(r, step), step)
        for i in n.inputs:
            if i and not g.tensors[i].is_const:
                r = root[i]
                last[r] = max(last.get(r, step), step)
    buffers = [memory.Buffer(r, g.tensors[r].nbytes, first[r], last[r])
               for r in first if r not in loc]
    plan = memory.plan(buffers, ALIGN)
    memory.check_plan(buffers, plan.offsets)
    for r, off in plan.offsets.items():
        loc[r] = Location("arena", off)

    def ptr(name: str, const: bool) -> str:
        t = g.tensors[name]
        ct = dtypes.c_type(t.dtype)
        r = root[name]
        lc = loc[r]
        if lc.kind == "arena":
            q = "const " if const else ""
            return f"({q}{ct}*)(arena + {lc.index})"
        if lc.kind == "input":
            return f"in{lc.index}"
        if lc.kind == "output":
            return f"out{lc.index}"
        raise AssertionError(lc)

    pool = ConstPool()
    helpers: set[str] = set()
    layers: list[Layer] = []
    report_layers = []
    for step, n in enumerate(g.nodes):
        op = ops.get(n.op)
        if op.view and not g.tensors[n.inputs[0]].is_const:
            continue
        li = len(layers)
        k = KernelContext(g, n, li, pool, options)
        body = sparse.emit(k) or op.emit(k)
        helpers |= k.helpers
        fname = _func_name(li, n.op)
        params = []
        for pname, ctype, is_out in k.params:
            q = "" if is_out else "const "
            params.append(f"{q}{ctype}* {pname}")
        unused = [p for p, _, _ in k.params if not re.search(rf"\b{p}\b", body)]
        body = "".join(f"  (void){p};\n" for p in unused) + body.rstrip("\n") + "\n"
        args = []
        for i, name in enumerate(n.inputs):
            if name and not g.tensors[name].is_const:
                args.append(ptr(name, True))
        for name in n.outputs:
            if name:
                args.append(ptr(name, False))
        in_desc = ", ".join(str(list(g.tensors[i].shape)) for i in n.inputs
                            if i and not g.tensors[i].is_const)
        out_desc = ", ".join(str(list(g.tensors[o].shape)) for o in n.outputs if o)
        comment = cgen.comment_text(f"layer {li}: {n.op} '{n.name}' {in_desc} -> {out_desc}", 200)
        code = "".join(f + "\n" for f in k.functions) + (
                f"/* {comment} */\nstatic EDGEC_NOINLINE void {fname}("
                f"{', '.join(params) if params else 'void'})\n{{\n{body}}}\n")
        layers.append(Layer(li, n, fname, code, args,
                            [g.tensors[o].nbytes for o in n.outputs if o]))
        report_layers.append({
            "index": li,
            "op": n.op,
            "name": n.name,
            "function": fname,
            "outputs": [o for o in n.outputs if o],
            "output_shapes": [list(g.tensors[o].shape) for o in n.outputs if o],
            "output_dtypes": [g.tensors[o].dtype for o in n.outputs if o],
            "output_bytes": [g.tensors[o].nbytes for o in n.outputs if o],
            "arena": [
                {"offset": loc[root[o]].index, "bytes": g.tensors[o].nbytes}
                for o in n.outputs if o and loc[root[o]].kind == "arena"
            ],
            "macs": int(op.macs(g, n)),
            **k.report,
        })

    wbytes = pool.bytes_by_layer()
    for rl in report_layers:
        rl["weights_bytes"] = wbytes.get(rl["index"], 0)
    # live arena bytes at each layer, and the last layer each arena buffer is
    # live at (for per-layer RAM attribution in size reports)
    step_of = {id(n): s for s, n in enumerate(g.nodes)}
    layer_steps = [step_of[id(L.node)] for L in layers]
    last_of = {b.key: b.last for b in buffers}
    # live bytes per step from a difference array (linear, not layers x buffers)
    delta = [0] * (len(g.nodes) + 1)
    for b in buffers:
        delta[b.first] += b.size
        delta[b.last + 1] -= b.size
    live, acc = [], 0
    for d in delta:
        acc += d
        live.append(acc)
    for rl, L in zip(report_layers, layers):
        s = step_of[id(L.node)]
        rl["arena_live_bytes"] = live[s]
        for a, o in zip(rl["arena"], [o for o in L.node.outputs
                                      if o and loc[root[o]].kind == "arena"]):
            a["last_layer"] = bisect.bisect_right(layer_steps, last_of[root[o]]) - 1

    ins = [g.tensors[i] for i in g.inputs]
    outs = [g.tensors[o] for o in g.outputs]
    io = {
        "inputs": [_io_desc(t, i, g.meta) for i, t in enumerate(ins)],
        "outputs": [_io_desc(t, j, g.meta) for j, t in enumerate(outs)],
    }
    arena_size = plan.size
    weights_bytes = sum(wbytes.values())
    macs = sum(rl["macs"] for rl in report_layers)
    common = dict(prefix=prefix, PREFIX=prefix.upper(), io=io, arena_size=arena_size,
                  weights_bytes=weights_bytes, macs=macs, num_layers=len(layers),
                  model_name=cgen.comment_text(g.name), meta=g.meta)
    model_h = render("model.h.j2", **common)
    model_c = render(
        "model.c.j2",
        **common,
        consts=pool.render(),
        helpers=sorted(helpers),
        layers=layers,
        arena_used=arena_size > 0,
    )
    return NativeResult(model_c, model_h, arena_size, plan.lower_bound, report_layers,
                        weights_bytes, plan.order)


def _io_extras(t, meta: dict) -> tuple[list[str], list[tuple[str, str]]]:
    """Header comments and defines for an input/output: class label tables (string
    labels of classifiers, output as indices) and the integer-level encoding of
    ``--quantized-input`` tree features."""
    comments, defines = [], []
    labels = (meta.get("labels") or {})
    table = labels.get(t.name) or labels.get(str(t.origin))
    if table:
        comments.append(f"class labels: the output holds indices into {len(table)} labels")
        defines.append(("NUM_LABELS", str(len(table))))
        defines.append(("LABELS", "{ " + ", ".join(cgen.c_string(v) for v in table) + " }"))
    enc = (meta.get("input_encoding") or {}).get(t.name)
    if enc:
        comments.append(f"integer features: level = x != x ? {enc['nan']} : clamp(floor((x - LO[f]) "
                        f"* INV_SCALE[f] + 0.5), 0, {enc['top']}) in float arithmetic")
        defines.append(("LEVEL_BITS", str(enc["bits"])))
        defines.append(("LEVEL_MAX", str(enc["top"])))
        defines.append(("LEVEL_NAN", str(enc["nan"])))
        defines.append(("LEVEL_LO", "{ " + ", ".join(cgen.c_float(v) for v in enc["lo"]) + " }"))
        defines.append(("LEVEL_INV_SCALE", "{ " + ", ".join(cgen.c_float(v) for v in enc["inv"]) + " }"))
    return comments, defines


def _io_desc(t, idx, meta: dict | None = None) -> dict:
    d = {
        "index": idx,
        "name": cgen.comment_text(t.name),
        "tensor": t.name,
        "shape": list(t.shape),
        "dtype": t.dtype,
        "ctype": dtypes.c_type(t.dtype),
        "elements": t.size,
        "bytes": t.nbytes,
    }
    if t.quant is not None and t.quant.scale.size == 1:
        s, z = t.quant.scalar()
        d["scale"] = s
        d["zero_point"] = z
        d["scale_c"] = cgen.c_float(s)
    d["comments"], d["defines"] = _io_extras(t, meta or {})
    return d
