"""edgec's own ahead-of-time C generator.

Graph -> model.c / model.h: every layer becomes one specialized C function whose
shapes, strides and requantization constants are literals; weights are ``const``
arrays (flash); activations live in one static arena planned by
:mod:`edgec.backends.memory`; graph inputs are read from the caller's buffers and graph
outputs written straight into the caller's buffers.
"""
from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass, field

import numpy as np

from ..ir import cgen, dtypes
from . import memory
from .base import BackendOptions, BackendResult
from .. import ops
from ..ir.errors import EdgecError, UnsupportedError
from ..ir.graph import Graph, GraphMeta, Node
from ..ir.templating import render
from . import sparse

ALIGN = 16

# A kernel with more tensor inputs than this (``packed``) takes their addresses as a
# few base pointers (``const void* const* xb``: the arena, graph inputs or outputs)
# and a table of (base, byte offset) pairs (``const size_t* xo``), both compound
# literals at the call, instead of one parameter each: C compilers are superlinear in
# a function's parameters (gcc -O0 took 35 s on a Concat of 5,000 inputs, 5 s on one
# of 2,500) and in a run of pointer stores into one array (the SLP vectorizer).
MAX_INPUT_PARAMS = 64


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
    n_out: int = 0

    @property
    def out_args(self) -> list[str]:
        return self.args[len(self.args) - len(self.out_bytes) - self.extra_args:][:len(self.out_bytes)]

    extra_args: int = 0


class ConstPool:
    """Constant arrays of the bundle, deduplicated by content."""

    def __init__(self):
        self.arrays: list[tuple[str, str, np.ndarray, int]] = []  # symbol, dtype, data, layer
        self._by_key: dict[tuple, str] = {}
        self._symbols: set[str] = set()

    def add(self, data: np.ndarray, dtype: str, hint: str, layer: int) -> str:
        data = np.ascontiguousarray(np.asarray(data).astype(dtypes.np_dtype(dtype)))
        key = (dtype, data.shape, hashlib.sha256(data.tobytes()).hexdigest())
        if key in self._by_key:
            return self._by_key[key]
        sym = f"edgec_l{layer}_{hint}" if layer >= 0 else f"edgec_{hint}"
        base, k = sym, 1
        while sym in self._symbols:  # (a set: a scan of the arrays per constant was quadratic)
            sym = f"{base}_{k}"
            k += 1
        self.arrays.append((sym, dtype, data, layer))
        self._symbols.add(sym)
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
        self.helpers: set[str] = set()  # templates/runtime/<name>.c this kernel needs
        self.functions: list[str] = []  # file-scope helper functions of this kernel
        self.report: dict = {}  # extra facts for this layer's entry in report.json
        self.scratch_bytes = 0          # arena bytes live only while this layer runs
        self.inplace: list[tuple[int, int, str]] = []  # (input, output, kind) it tolerates
        self._in_names: dict[int, str] = {}
        live = [i for i, name in enumerate(node.inputs) if name and not g.tensors[name].is_const]
        # many inputs: addresses from xb and xo (see MAX_INPUT_PARAMS), input i is
        # packed input j, its position among the non-constant inputs
        self.packed = len(live) > MAX_INPUT_PARAMS
        if self.packed:
            self.params.append(("xb", "void* const", False))
            self.params.append(("xo", "size_t", False))
        for j, i in enumerate(live):
            ct = dtypes.c_type(g.tensors[node.inputs[i]].dtype)
            if self.packed:
                self._in_names[i] = f"((const {ct}*){self.packed_input(j)})"
            else:
                self._in_names[i] = f"x{i}"
                self.params.append((f"x{i}", ct, False))
        for j, name in enumerate(node.outputs):
            if name:
                self.params.append((f"y{j}", dtypes.c_type(g.tensors[name].dtype), True))

    # operands
    def x(self, i: int) -> str:
        """C name of input i: a parameter (``x<i>``; in a kernel with many inputs,
        ``packed``, an address from ``xb`` and ``xo``), or (constants) an array in
        flash, added to the bundle only when a kernel asks for it."""
        if i not in self._in_names:
            t = self.g.tensors[self.node.inputs[i]]
            self._in_names[i] = self.pool.add(t.data, t.dtype, f"c{i}", self.layer)
        return self._in_names[i]

    def packed_input(self, j) -> str:
        """(``packed`` kernels) the address of non-constant input ``j`` (an int or a C
        expression) as a ``const void*``: base ``xb[xo[2j]]`` plus ``xo[2j + 1]`` bytes."""
        b, o = (f"xo[{2 * j}]", f"xo[{2 * j + 1}]") if isinstance(j, int) else \
            (f"xo[2 * {j}]", f"xo[2 * {j} + 1]")
        return f"(const void*)((const uint8_t*)xb[{b}] + {o})"

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

    @property
    def target(self):
        return self.options.get("target")

    @property
    def optimize(self) -> str:
        """``speed`` (kernels specialized per layer) or ``size`` (one shared kernel
        per operator type, parameters passed at run time)."""
        return self.options.get("optimize", "speed")

    def scratch(self, nbytes: int) -> str:
        """A scratch buffer of ``nbytes`` in the arena, live only during this
        layer (16-byte aligned); returns the C name of its ``uint8_t*``."""
        if self.scratch_bytes == 0:
            self.params.append(("s0", "uint8_t", True))
        self.scratch_bytes = max(self.scratch_bytes, int(nbytes), 1)
        return "s0"

    def allow_inplace(self, i: int, j: int, kind: str) -> None:
        """The kernel stays correct when output ``j`` shares input ``i``'s buffer:
        ``same``: at the same address (``out`` no larger than ``in``);
        ``pixels``: a per-pixel kernel over P pixels (reads pixel p before it
        writes pixel p, in order): same address when the output is smaller,
        else the input placed at the end of the output."""
        if kind not in ("same", "pixels"):
            raise ValueError(kind)
        self.inplace.append((i, j, kind))

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


def fuse_conv_add(g: Graph, options: dict) -> None:
    """Fuse an int8 ADD/SUB of two same-shaped tensors into the Conv producing
    one of them (the later one), when that Conv has a DSP kernel and nothing
    else reads its output: the Conv computes its int8 output, then the sum,
    and the intermediate tensor never reaches memory.  Done on the backend's
    own copy of the graph; results stay bit for bit those of the two ops."""
    from ..ops import binary, conv, dsp
    if not dsp.wanted(options):
        return
    prod_idx = {o: i for i, n in enumerate(g.nodes) for o in n.outputs if o}
    cons = g.consumers()
    outputs = set(g.outputs)
    removed = set()
    for a in g.nodes:
        if a.op not in ("Add", "Sub") or not binary._is_q(g, a) or len(a.inputs) != 2:
            continue
        shape = g.tensors[a.outputs[0]].shape
        ins = a.inputs
        if ins[0] == ins[1] or any(g.tensors[i].shape != shape or g.tensors[i].is_const
                                   or g.tensors[i].dtype != "int8" for i in ins):
            continue
        best = None
        for j, t in enumerate(ins):
            c = g.nodes[prod_idx[t]] if t in prod_idx else None
            if c is None or c.op != "Conv" or c.attrs.get("fused_add") or id(c) in removed:
                continue
            if conv.simd_kind(g, c, dsp.mve_wanted(options)) != "gemm" or len(cons.get(t, [])) != 1 \
                    or t in outputs:
                continue
            other = ins[1 - j]
            if other in prod_idx and prod_idx[other] > prod_idx[t]:
                continue
            if best is None or prod_idx[t] > prod_idx[best[1]]:
                best = (j, t)
        if best is None:
            continue
        j, t = best
        c = g.nodes[prod_idx[t]]
        c.inputs = list(c.inputs) + [""] * max(0, 3 - len(c.inputs))
        c.inputs.append(ins[1 - j])
        c.attrs["fused_add"] = {"node": a, "conv_operand": j, "skip_input": len(c.inputs) - 1,
                                "conv_output": t}
        c.outputs = [a.outputs[0]]
        removed.add(id(a))
    if removed:
        g.nodes = [n for n in g.nodes if id(n) not in removed]


class _LiveMax:
    """Bytes live per step under range additions, with the maximum over all
    steps: a segment tree with lazy additions, updated bottom-up (O(log n) per
    update, no recursion)."""

    def __init__(self, n: int):
        self.n = max(1, n)
        size = 1
        while size < self.n:
            size *= 2
        self.size = size
        # mx[p]: maximum over p's steps, including the additions pending at p (lz[p]);
        # padding steps past n never count
        self.mx = [0] * self.n + [-(1 << 62)] * (size - self.n)
        self.mx = [0] * size + self.mx
        for p in range(size - 1, 0, -1):
            self.mx[p] = max(self.mx[2 * p], self.mx[2 * p + 1])
        self.lz = [0] * size

    def add(self, lo: int, hi: int, v: int) -> None:
        """Add ``v`` to steps ``lo..hi`` (inclusive)."""
        lo, hi = max(lo, 0), min(hi, self.n - 1)
        if hi < lo:
            return
        size, mx, lz = self.size, self.mx, self.lz
        left, right = lo + size, hi + size + 1
        while left < right:
            if left & 1:
                mx[left] += v
                if left < size:
                    lz[left] += v
                left += 1
            if right & 1:
                right -= 1
                mx[right] += v
                if right < size:
                    lz[right] += v
            left >>= 1
            right >>= 1
        for p in (lo + size, hi + size):
            p >>= 1
            while p:
                mx[p] = max(mx[2 * p], mx[2 * p + 1]) + lz[p]
                p >>= 1

    @property
    def max(self) -> int:
        return self.mx[1]


def inplace_groups(g: Graph, root, first, last, arena_roots, candidates, extra=(),
                   merges: list | None = None) -> dict:
    """Arena buffers merged because a kernel writes its output over an input
    that dies with it.  Returns {group key: {root: byte offset in the group}}.

    ``candidates``: (step, input tensor, output tensor, kind) from the kernels'
    ``allow_inplace``; a merge needs both in the arena, the input's last use at
    that step and the output first written there.  A merge that would raise
    the lifetime lower bound (with the ``extra`` scratch buffers) is not made:
    an output larger than its input, placed over it, occupies its full size
    from the input's first step on."""
    arena = set(arena_roots)
    group_of: dict[str, str] = {}
    groups: dict[str, dict[str, int]] = {}
    span: dict[str, tuple[int, int, int]] = {}
    merges = [] if merges is None else merges  # (input root, step) taken over in place  # buffer key -> (size, first, last)
    n_steps = 1 + max([last[r] for r in arena_roots] + [b.last for b in extra] + [0])
    live = _LiveMax(n_steps)
    for r in arena_roots:
        span[r] = (g.tensors[r].nbytes, first[r], last[r])
        live.add(first[r], last[r], g.tensors[r].nbytes)
    for b in extra:
        live.add(b.first, b.last, b.size)
    best = live.max
    for step, i, o, kind in candidates:
        ri, ro = root[i], root[o]
        if ri not in arena or ro not in arena or ri == ro or ro in group_of:
            continue
        if last[ri] != step or first[ro] != step:
            continue
        ib, ob = g.tensors[ri].nbytes, g.tensors[ro].nbytes
        if g.tensors[i].nbytes != ib or g.tensors[o].nbytes != ob:
            continue
        if kind == "same" and ob > ib:
            continue
        key = group_of.get(ri, ri)
        members = dict(groups.get(key, {ri: 0}))
        off = members[ri] - max(0, ob - ib)
        members[ro] = off
        if off < 0:
            members = {r: v - off for r, v in members.items()}
        old = [span[key], span[ro]]
        new = (max(v + g.tensors[r].nbytes for r, v in members.items()),
               min(old[0][1], old[1][1]), max(old[0][2], old[1][2]))
        for size, f, l in old:
            live.add(f, l, -size)
        live.add(new[1], new[2], new[0])
        if live.max > best:
            live.add(new[1], new[2], -new[0])
            for size, f, l in old:
                live.add(f, l, size)
            continue
        best = live.max
        groups[key] = members
        span[key] = new
        del span[ro]
        group_of[ri] = key
        group_of[ro] = key
        merges.append((ri, step))
    return groups


def group_buffers(g: Graph, first, last, arena_roots, groups) -> list:
    """Planner buffers: one per in-place group, one per other arena root."""
    grouped = {r for members in groups.values() for r in members}
    bufs = [memory.Buffer(r, g.tensors[r].nbytes, first[r], last[r])
            for r in arena_roots if r not in grouped]
    for key, members in groups.items():
        size = max(off + g.tensors[r].nbytes for r, off in members.items())
        bufs.append(memory.Buffer(key, size, min(first[r] for r in members),
                                  max(last[r] for r in members)))
    return bufs


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
    """The graph as C99, in steps: rewrites, buffer lifetimes, one kernel per layer,
    in-place grouping and the arena plan, the layer functions, memory per layer for the
    report, the model's C and header."""
    options = dict(options or {})
    g = prepare(g, options)
    root, loc = assign_buffers(g)
    first, last = lifetimes(g, root)
    pool, helpers, emitted = emit_kernels(g, options)
    arena = plan_arena(g, root, loc, first, last, emitted)
    layers, report_layers = layer_functions(g, root, loc, emitted, arena.scratch_at)
    attribute_memory(g, root, loc, first, last, arena, pool, layers, report_layers)
    return model_sources(g, prefix, options, pool, helpers, layers, report_layers, arena.plan)


def prepare(g: Graph, options: dict) -> Graph:
    """A copy of the graph the way the kernels want it: outputs written by their own
    node, nodes in order, every operator supported, Conv + Add fused where it can."""
    g = g.copy()
    g.fold_constants = False
    materialize_outputs(g)
    g.topo_sort()
    g.validate()
    check_supported(g)
    fuse_conv_add(g, options)
    return g


def lifetimes(g: Graph, root: dict[str, str]) -> tuple[dict[str, int], dict[str, int]]:
    """First and last step (node index) each arena root is live at."""
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
    return first, last


def emit_kernels(g: Graph, options: dict) -> tuple[ConstPool, set[str], list]:
    """Kernels first: they say what scratch they need and what sharing they tolerate.
    Returns the constants, the helpers used and (step, node, layer index,
    KernelContext, body) per layer (views of computed tensors are no layer)."""
    pool = ConstPool()
    helpers: set[str] = set()
    emitted = []
    for step, n in enumerate(g.nodes):
        op = ops.get(n.op)
        if op.view and not g.tensors[n.inputs[0]].is_const:
            continue
        li = len(emitted)
        k = KernelContext(g, n, li, pool, options)
        body = sparse.emit(k) or op.emit(k)
        helpers |= k.helpers
        emitted.append((step, n, li, k, body))
    return pool, helpers, emitted


@dataclass
class ArenaPlan:
    plan: memory.Plan
    arena_roots: list[str]
    scratch: list                # memory.Buffer per layer with scratch
    scratch_at: dict[int, int]   # layer index -> scratch offset
    groups: dict                 # the in-place groups the plan used (none: {})
    merges: list                 # (root, step) whose memory an in-place layer takes over


def plan_arena(g: Graph, root, loc, first, last, emitted) -> ArenaPlan:
    """Group in-place candidates, plan the arena with and without the groups, keep the
    smaller plan (the first on a tie) and place every arena root (``loc``, in place)."""
    arena_roots = [r for r in first if r not in loc]
    base = [memory.Buffer(r, g.tensors[r].nbytes, first[r], last[r]) for r in arena_roots]
    scratch = [memory.Buffer(("scratch", li), k.scratch_bytes, step, step)
               for step, n, li, k, body in emitted if k.scratch_bytes]
    candidates = []
    for step, n, li, k, body in emitted:
        for i, j, kind in k.inplace:
            candidates.append((step, n.inputs[i], n.outputs[j], kind))
    merges: list = []
    groups = inplace_groups(g, root, first, last, arena_roots, candidates, scratch, merges)
    plans = []
    for grp in ([groups] if groups else []) + [{}]:
        bufs = group_buffers(g, first, last, arena_roots, grp) + scratch
        p = memory.plan(bufs, ALIGN)
        memory.check_plan(bufs, p.offsets)
        plans.append((p.size, len(plans), p, grp, bufs))
    _, _, plan, used_groups, _ = min(plans, key=lambda t: (t[0], t[1]))
    plan.lower_bound = memory.lower_bound(base)
    member_of = {}
    for key, members in used_groups.items():
        for r, off in members.items():
            member_of[r] = (key, off)
    for r in arena_roots:
        key, off = member_of.get(r, (r, 0))
        loc[r] = Location("arena", plan.offsets[key] + off)
    scratch_at = {b.key[1]: plan.offsets[b.key] for b in scratch}
    return ArenaPlan(plan, arena_roots, scratch, scratch_at, used_groups, merges)


def layer_functions(g: Graph, root, loc, emitted, scratch_at) -> tuple[list[Layer], list[dict]]:
    """One C function per layer (its parameters, the pointers it is called with) and
    the report's entry for it."""

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

    def where(name: str) -> tuple[str, int]:
        """A tensor's address as a base pointer and a byte offset."""
        lc = loc[root[name]]
        return ("arena", lc.index) if lc.kind == "arena" else (ptr(name, True), 0)

    layers: list[Layer] = []
    report_layers = []
    for step, n, li, k, body in emitted:
        op = ops.get(n.op)
        fname = _func_name(li, n.op)
        params = []
        for pname, ctype, is_out in k.params:
            q = "" if is_out else "const "
            params.append(f"{q}{ctype}* {pname}")
        # a parameter is used when the body has it as a whole word: one pass over the
        # body, not one regex search per parameter (a Concat of 20,000 inputs)
        words = set(re.findall(r"\w+", body))
        unused = [p for p, _, _ in k.params if p not in words]
        body = "".join(f"  (void){p};\n" for p in unused) + body.rstrip("\n") + "\n"
        live = [name for name in n.inputs if name and not g.tensors[name].is_const]
        if k.packed:
            bases: dict[str, int] = {}
            pairs = []
            for name in live:
                base, off = where(name)
                pairs.append(f"{bases.setdefault(base, len(bases))}u, {off}u")
            args = ["(const void* const[]){" + ", ".join(bases) + "}",
                    "(const size_t[]){" + ", ".join(pairs) + "}"]
        else:
            args = [ptr(name, True) for name in live]
        for name in n.outputs:
            if name:
                args.append(ptr(name, False))
        extra = 0
        if k.scratch_bytes:
            args.append(f"(arena + {scratch_at[li]})")
            extra = 1
        in_desc = ", ".join(str(list(g.tensors[i].shape)) for i in n.inputs
                            if i and not g.tensors[i].is_const)
        out_desc = ", ".join(str(list(g.tensors[o].shape)) for o in n.outputs if o)
        comment = f"layer {li}: {n.op} '{cgen.comment_text(n.name, 120)}' {in_desc} -> {out_desc}"
        code = "".join(f + "\n" for f in k.functions) + (
                f"/* {comment} */\nstatic EDGEC_NOINLINE void {fname}("
                f"{', '.join(params) if params else 'void'})\n{{\n{body}}}\n")
        n_out = len([o for o in n.outputs if o])
        layers.append(Layer(li, n, fname, code, args,
                            [g.tensors[o].nbytes for o in n.outputs if o], n_out, extra))
        report_layers.append({
            "index": li,
            "op": n.op + ("+" + n.attrs["fused_add"]["node"].op if n.attrs.get("fused_add") else ""),
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
            "scratch_bytes": k.scratch_bytes,
            "inplace": any(loc[root[o]].kind == "arena" and any(
                loc[root[i]].kind == "arena" and loc[root[i]].index <= loc[root[o]].index
                + g.tensors[o].nbytes - 1 and loc[root[o]].index <= loc[root[i]].index
                + g.tensors[i].nbytes - 1 for i in n.inputs if i and not g.tensors[i].is_const)
                for o in n.outputs if o),
            "macs": int(op.macs(g, n)),
            **k.report,
        })
    return layers, report_layers


def attribute_memory(g: Graph, root, loc, first, last, arena: ArenaPlan, pool: ConstPool,
                     layers: list[Layer], report_layers: list[dict]) -> None:
    """Per layer in the report: its weights, the arena bytes live at it, and the last
    layer each of its arena buffers is live at (for per-layer RAM in size reports)."""
    wbytes = pool.bytes_by_layer()
    for rl in report_layers:
        rl["weights_bytes"] = wbytes.get(rl["index"], 0)
    # live arena bytes at each layer, and the last layer each arena buffer is
    # live at (for per-layer RAM attribution in size reports)
    step_of = {id(n): s for s, n in enumerate(g.nodes)}
    layer_steps = [step_of[id(L.node)] for L in layers]
    # A tensor whose memory an in-place layer takes over ends the step before;
    # scratch buffers belong to their layer.  Live bytes per step from a
    # difference array (linear, not layers x buffers); each layer's outputs and
    # scratch still live at the peak add up to its live bytes.
    held = dict(last)
    if arena.groups:
        for r, step in arena.merges:
            held[r] = step - 1
    delta = [0] * (len(g.nodes) + 1)
    for r in arena.arena_roots:
        delta[first[r]] += g.tensors[r].nbytes
        delta[held[r] + 1] -= g.tensors[r].nbytes
    for b in arena.scratch:
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
            a["last_layer"] = bisect.bisect_right(layer_steps, held[root[o]]) - 1
        if rl["index"] in arena.scratch_at:
            rl["arena"].append({"offset": arena.scratch_at[rl["index"]], "bytes": rl["scratch_bytes"],
                                "last_layer": rl["index"], "scratch": True})


def model_sources(g: Graph, prefix: str, options: dict, pool: ConstPool, helpers: set[str],
                  layers: list[Layer], report_layers: list[dict], plan: memory.Plan) -> NativeResult:
    """The model's C and header from the layers; every symbol carries the prefix."""
    wbytes = pool.bytes_by_layer()
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
        optimize=options.get("optimize", "speed"),
    )
    # every symbol carries the bundle's prefix (edgec_l3_conv -> <prefix>_l3_conv): several
    # bundles link into one firmware and their ELF symbols tell them apart
    model_c, model_h = cgen.prefix_symbols(model_c, prefix), cgen.prefix_symbols(model_h, prefix)
    for rl in report_layers:  # edgec_l3_conv -> <prefix>_l3_conv, as in the C (no regex per layer)
        rl["function"] = prefix + rl["function"][len("edgec"):]
    return NativeResult(model_c, model_h, arena_size, plan.lower_bound, report_layers,
                        weights_bytes, plan.order)


class NativeBackend:
    """edgec's own C99 (:func:`generate`) behind the backend contract."""
    name = "native"

    def generate(self, graph: Graph, options: BackendOptions) -> BackendResult:
        res = generate(graph, options.prefix, {
            "target": options.target, "optimize": options.optimize,
            **{k: v for k, v in (("kernels", options.kernels), ("sparse", options.sparse),
                                 ("trees", options.trees)) if v is not None}})
        return BackendResult(files={f"{options.prefix}.c": res.model_c,
                                    f"{options.prefix}.h": res.model_h},
                             arena_size=res.arena_size, arena_lower_bound=res.lower_bound,
                             weights_bytes=res.weights_bytes, layers=res.layers)


def _io_extras(t, meta: GraphMeta) -> tuple[list[str], list[tuple[str, str]]]:
    """Header comments and defines for an input/output: class label tables (string
    labels of classifiers, output as indices) and the integer-level encoding of
    ``--quantized-input`` tree features."""
    comments, defines = [], []
    labels = meta.labels
    table = labels.get(t.name) or labels.get(str(t.origin))
    if table:
        comments.append(f"class labels: the output holds indices into {len(table)} labels")
        defines.append(("NUM_LABELS", str(len(table))))
        defines.append(("LABELS", "{ " + ", ".join(cgen.c_string(v) for v in table) + " }"))
    enc = meta.input_encoding.get(t.name)
    if enc:
        comments.append(f"integer features: level = x != x ? {enc['nan']} : clamp(floor((x - LO[f]) "
                        f"* INV_SCALE[f] + 0.5), 0, {enc['top']}) in float arithmetic")
        defines.append(("LEVEL_BITS", str(enc["bits"])))
        defines.append(("LEVEL_MAX", str(enc["top"])))
        defines.append(("LEVEL_NAN", str(enc["nan"])))
        defines.append(("LEVEL_LO", "{ " + ", ".join(cgen.c_float(v) for v in enc["lo"]) + " }"))
        defines.append(("LEVEL_INV_SCALE", "{ " + ", ".join(cgen.c_float(v) for v in enc["inv"]) + " }"))
    return comments, defines


def _io_desc(t, idx, meta: GraphMeta | None = None) -> dict:
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
    d["comments"], d["defines"] = _io_extras(t, meta or GraphMeta())
    return d
