"""Random valid float ONNX graphs over the operators edgec imports.

A graph grows one node at a time from 1-3 random inputs.  Every value in the
pool carries its shape, element type and a conservative interval of the values
it can hold (graph inputs are uniform in [-1, 1]), so each operator is only
applied inside its numerically tame domain: no NaN or infinity, no division by
values near zero, no ``exp`` of large numbers.  Discontinuous operators
(``Floor``, comparisons, ``Hardmax``, casts to integers...) are only applied to
*exact* values (graph inputs and what exact operators such as ``Neg``,
``Transpose`` or ``MaxPool`` make of them), since two correct implementations
may round a computed value to different sides of a discontinuity.

Operators whose importer is not registered in :mod:`edgec.ops` are skipped, so
the generator only emits what the edgec under test claims to support.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import ops

BIG = 1e4          # no value may exceed this magnitude
MAX_ELEMS = 4096   # per tensor


@dataclass
class V:
    name: str
    shape: tuple
    dtype: str = "float32"    # "float32" | "bool" | "int64" | "int32"
    lo: float = -1.0
    hi: float = 1.0
    exact: bool = False
    const: bool = False

    @property
    def rank(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def amax(self):
        return max(abs(self.lo), abs(self.hi))


# operators younger than the oldest opset the generator picks
MIN_OPSET = {"Mish": 18, "HardSwish": 14, "Celu": 12, "LessOrEqual": 12, "GreaterOrEqual": 12,
             "Gelu": 20, "Trilu": 14, "CumProd": 26, "ScatterElements": 11, "ScatterND": 11,
             "Range": 11, "CumSum": 11}


class Reject(Exception):
    """The chosen operator does not fit the chosen operands; try another."""


_ELEM = {"float32": 1, "bool": 9, "int64": 7, "int32": 6}


class OnnxGen:
    def __init__(self, rng: np.random.Generator, max_nodes: int = 12):
        from onnx import helper
        self.h = helper
        self.rng = rng
        self.opset = int(rng.choice([11, 13, 13, 17, 17, 18]))
        self.nodes = []
        self.inits = []
        self.inputs: list[V] = []
        self.pool: list[V] = []
        self.used: set[str] = set()
        self.k = 0
        self.max_nodes = max_nodes
        self.ops_used: list[str] = []

    # -- helpers ----------------------------------------------------------------
    def name(self, hint: str) -> str:
        self.k += 1
        return f"{hint}{self.k}"

    def has(self, op: str) -> bool:
        return ("", op) in ops.ONNX_IMPORTERS and self.opset >= MIN_OPSET.get(op, 1)

    def r(self, a, b):
        """Random int in [a, b]."""
        return int(self.rng.integers(a, b + 1))

    def pick(self, pred=lambda v: True, dtype="float32") -> V:
        cands = [v for v in self.pool if v.dtype == dtype and pred(v)]
        if not cands:
            raise Reject
        # favour recent values: deeper graphs
        w = np.arange(1, len(cands) + 1, dtype=float) ** 1.5
        return cands[int(self.rng.choice(len(cands), p=w / w.sum()))]

    def const(self, arr: np.ndarray, hint="c", exact=True) -> V:
        arr = np.asarray(arr)
        dt = {"float32": "float32", "bool": "bool", "int64": "int64", "int32": "int32"}[str(arr.dtype)]
        name = self.name(hint)
        self.inits.append(self.h.make_tensor(name, _ELEM[dt], arr.shape, arr.reshape(-1).tolist()
                                             if dt != "bool" else arr.reshape(-1).astype(int).tolist()))
        lo = float(arr.min()) if arr.size and dt == "float32" else 0.0
        hi = float(arr.max()) if arr.size and dt == "float32" else 1.0
        return V(name, tuple(arr.shape), dt, lo, hi, exact, True)

    def fconst(self, shape, lo=-1.0, hi=1.0, hint="c") -> V:
        a = self.rng.uniform(lo, hi, shape).astype(np.float32)
        return self.const(a, hint)

    def ints(self, values, hint="s") -> str:
        return self.const(np.array(values, np.int64), hint).name

    def node(self, op: str, ins: list[str], out: V | list[V], **attrs):
        outs = out if isinstance(out, list) else [out]
        for v in outs:
            if v.size > MAX_ELEMS or (v.dtype == "float32" and v.amax > BIG):
                raise Reject
            if any(d <= 0 for d in v.shape):
                raise Reject
        self.nodes.append(self.h.make_node(op, ins, [v.name for v in outs], name=self.name("n"),
                                           **attrs))
        self.used.update(i for i in ins if i)
        self.pool.extend(outs)
        self.ops_used.append(op)
        return out

    def new(self, shape, lo, hi, exact=False, dtype="float32", hint="t") -> V:
        return V(self.name(hint), tuple(int(d) for d in shape), dtype, float(lo), float(hi), exact)

    def rand_shape(self, rank=None, max_elems=512):
        rank = self.r(1, 4) if rank is None else rank
        while True:
            s = tuple(self.r(1, 6 if rank > 2 else 12) for _ in range(rank))
            if int(np.prod(s)) <= max_elems:
                return s

    def bshape(self, shape):
        """A shape that broadcasts with ``shape`` (to ``shape`` or larger)."""
        s = [d if self.rng.random() < 0.6 else 1 for d in shape]
        if s and self.rng.random() < 0.3:
            s = s[self.r(0, len(s)):]
        if self.rng.random() < 0.1 and len(shape) < 4:
            s = [self.r(2, 3)] + list(shape)  # the constant widens the result
        return tuple(s)

    # -- the graph ----------------------------------------------------------------
    def build(self):
        n_in = self.r(1, 3)
        for i in range(n_in):
            if self.rng.random() < 0.4:
                shape = (self.r(1, 2), self.r(1, 6), self.r(1, 9), self.r(1, 9))
            else:
                shape = self.rand_shape()
            v = V(f"in{i}", shape, "float32", -1.0, 1.0, exact=True)
            self.inputs.append(v)
            self.pool.append(v)
        target = self.r(1, self.max_nodes)
        gens = [g for g in GENERATORS if all(self.has(o) for o in g[2])]
        weights = np.array([g[1] for g in gens], float)
        tries = 0
        while len(self.nodes) < target and tries < 40 * target:
            tries += 1
            fn = gens[int(self.rng.choice(len(gens), p=weights / weights.sum()))][0]
            snap = (len(self.nodes), len(self.inits), len(self.pool), set(self.used), len(self.ops_used))
            try:
                fn(self)
            except Reject:
                self.nodes = self.nodes[:snap[0]]
                self.inits = self.inits[:snap[1]]
                self.pool = self.pool[:snap[2]]
                self.used = snap[3]
                self.ops_used = self.ops_used[:snap[4]]
        return self.model()

    def model(self):
        h = self.h
        computed = [v for v in self.pool if not v.const and v not in self.inputs]
        outs = [v for v in computed if v.name not in self.used]
        outs += [v for v in computed if v.name in self.used and self.rng.random() < 0.25]
        if not outs:
            # a graph input straight to an output
            v = self.pool[0]
            y = self.new(v.shape, v.lo, v.hi, v.exact)
            self.node("Identity", [v.name], y)
            outs = [y]
        outs = sorted(outs, key=lambda v: int(v.name.lstrip("abcdefghijklmnopqrstuvwxyz") or 0))
        used_inputs = [v for v in self.inputs if v.name in self.used or v in outs]
        g = h.make_graph(
            self.nodes, "fuzz",
            [h.make_tensor_value_info(v.name, _ELEM[v.dtype], v.shape) for v in used_inputs],
            [h.make_tensor_value_info(v.name, _ELEM[v.dtype], v.shape) for v in outs],
            self.inits)
        m = h.make_model(g, opset_imports=[h.make_opsetid("", self.opset)],
                         producer_name="edgec-fuzz")
        m.ir_version = 8
        return m


# --- operator generators: fn(gen) adds one or a few nodes or raises Reject --------

def _interval(f, lo, hi, samples=64):
    xs = np.linspace(lo, hi, samples)
    ys = f(xs)
    return float(np.min(ys)), float(np.max(ys))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name: (domain(v) -> bool, output interval fn(lo, hi) -> (lo, hi), exact preserved, attrs(gen))
UNARY = {
    "Relu": (lambda v: True, lambda lo, hi: (max(lo, 0), max(hi, 0)), True, None),
    "Neg": (lambda v: True, lambda lo, hi: (-hi, -lo), True, None),
    "Abs": (lambda v: True, lambda lo, hi: (0 if lo < 0 < hi else min(abs(lo), abs(hi)),
                                            max(abs(lo), abs(hi))), True, None),
    "Sigmoid": (lambda v: True, lambda lo, hi: (_sigmoid(lo), _sigmoid(hi)), False, None),
    "Tanh": (lambda v: True, lambda lo, hi: (math.tanh(lo), math.tanh(hi)), False, None),
    "Exp": (lambda v: v.hi <= 8, lambda lo, hi: (math.exp(lo), math.exp(hi)), False, None),
    "Log": (lambda v: v.lo >= 0.05, lambda lo, hi: (math.log(lo), math.log(hi)), False, None),
    "Sqrt": (lambda v: v.lo >= 0, lambda lo, hi: (math.sqrt(lo), math.sqrt(hi)), False, None),
    "Reciprocal": (lambda v: v.lo >= 0.2 or v.hi <= -0.2, lambda lo, hi: (1 / hi, 1 / lo), False, None),
    "Sin": (lambda v: v.amax < 100, lambda lo, hi: (-1, 1), False, None),
    "Cos": (lambda v: v.amax < 100, lambda lo, hi: (-1, 1), False, None),
    "Tan": (lambda v: v.amax < 1.2, lambda lo, hi: (math.tan(lo), math.tan(hi)), False, None),
    "Atan": (lambda v: True, lambda lo, hi: (math.atan(lo), math.atan(hi)), False, None),
    "Asin": (lambda v: v.amax <= 0.95, lambda lo, hi: (math.asin(lo), math.asin(hi)), False, None),
    "Acos": (lambda v: v.amax <= 0.95, lambda lo, hi: (math.acos(hi), math.acos(lo)), False, None),
    "Atanh": (lambda v: v.amax <= 0.9, lambda lo, hi: (math.atanh(lo), math.atanh(hi)), False, None),
    "Asinh": (lambda v: True, lambda lo, hi: (math.asinh(lo), math.asinh(hi)), False, None),
    "Acosh": (lambda v: v.lo >= 1.05, lambda lo, hi: (math.acosh(lo), math.acosh(hi)), False, None),
    "Sinh": (lambda v: v.amax <= 6, lambda lo, hi: (math.sinh(lo), math.sinh(hi)), False, None),
    "Cosh": (lambda v: v.amax <= 6, lambda lo, hi: (1, math.cosh(max(abs(lo), abs(hi)))), False, None),
    "Erf": (lambda v: True, lambda lo, hi: (math.erf(lo), math.erf(hi)), False, None),
    "Softsign": (lambda v: True, lambda lo, hi: (lo / (1 + abs(lo)), hi / (1 + abs(hi))), False, None),
    "Softplus": (lambda v: v.hi <= 15, lambda lo, hi: (0, math.log1p(math.exp(hi))), False, None),
    "HardSigmoid": (lambda v: True, lambda lo, hi: (0, 1), False,
                    lambda g: dict(alpha=float(g.rng.uniform(0.1, 0.5)), beta=float(g.rng.uniform(0.2, 0.8)))),
    "HardSwish": (lambda v: True, lambda lo, hi: (min(lo, 0), max(hi, 0)), False, None),
    "LeakyRelu": (lambda v: True, lambda lo, hi: (min(lo, 0), max(hi, 0)), False,
                  lambda g: dict(alpha=float(g.rng.uniform(0.01, 0.5)))),
    "Elu": (lambda v: v.hi < BIG, lambda lo, hi: (min(lo, -1.5), hi), False,
            lambda g: dict(alpha=float(g.rng.uniform(0.2, 1.5)))),
    "Selu": (lambda v: v.hi < 1000, lambda lo, hi: (-2, max(hi, 0) * 1.06), False, None),
    "Celu": (lambda v: True, lambda lo, hi: (min(lo, -2), hi), False,
             lambda g: dict(alpha=float(g.rng.uniform(0.5, 2.0)))),
    "Mish": (lambda v: v.hi < 1000, lambda lo, hi: (-0.4, max(hi, 0)), False, None),
    "ThresholdedRelu": (lambda v: v.exact, lambda lo, hi: (0 if lo < 1 else lo, max(hi, 0)), True,
                        lambda g: dict(alpha=float(g.rng.uniform(-0.5, 0.9)))),
    "Floor": (lambda v: v.exact, lambda lo, hi: (math.floor(lo), math.floor(hi)), True, None),
    "Ceil": (lambda v: v.exact, lambda lo, hi: (math.ceil(lo), math.ceil(hi)), True, None),
    "Round": (lambda v: v.exact, lambda lo, hi: (round(lo), round(hi)), True, None),
    "Sign": (lambda v: v.exact, lambda lo, hi: (-1, 1), True, None),
}


# how to bring any value into an operator's domain: ("pos", t): Abs(x) + t + u;
# ("abs", b): Tanh(x) * 0.9 b
INTO_DOMAIN = {"Log": ("pos", 0.05), "Sqrt": ("pos", 0.0), "Reciprocal": ("pos", 0.2),
               "Acosh": ("pos", 1.05), "Asin": ("abs", 0.95), "Acos": ("abs", 0.95),
               "Atanh": ("abs", 0.9), "Tan": ("abs", 1.2), "Sinh": ("abs", 6), "Cosh": ("abs", 6),
               "Exp": ("abs", 8), "Softplus": ("abs", 15), "Sin": ("abs", 50), "Cos": ("abs", 50),
               "Pow": ("pos", 0.1)}


def into_domain(g: OnnxGen, op: str, dom) -> V:
    """A value in ``op``'s domain: an existing one, or one transformed into it."""
    try:
        return g.pick(dom)
    except Reject:
        if op not in INTO_DOMAIN:
            raise
    kind, b = INTO_DOMAIN[op]
    x = g.pick()
    if kind == "pos":
        a = g.new(x.shape, 0 if x.lo < 0 < x.hi else min(abs(x.lo), abs(x.hi)), x.amax, x.exact)
        g.node("Abs", [x.name], a)
        c = g.const(np.array(b + g.rng.uniform(0.05, 1.0), np.float32))
        y = g.new(x.shape, a.lo + c.lo, a.hi + c.hi, False)
        g.node("Add", [a.name, c.name], y)
    else:
        t = g.new(x.shape, math.tanh(x.lo), math.tanh(x.hi))
        g.node("Tanh", [x.name], t)
        c = g.const(np.array(0.9 * b, np.float32))
        y = g.new(x.shape, t.lo * c.lo, t.hi * c.hi)
        y.lo, y.hi = min(y.lo, y.hi), max(y.lo, y.hi)
        g.node("Mul", [t.name, c.name], y)
    if not dom(y):
        raise Reject
    return y


def gen_unary(g: OnnxGen):
    names = [n for n in UNARY if g.has(n)]
    op = names[g.r(0, len(names) - 1)]
    dom, itv, exact, attrs = UNARY[op]
    x = into_domain(g, op, dom)
    lo, hi = itv(x.lo, x.hi)
    y = g.new(x.shape, min(lo, hi), max(lo, hi), exact and x.exact)
    g.node(op, [x.name], y, **(attrs(g) if attrs else {}))


def gen_clip(g: OnnxGen):
    x = g.pick()
    lo = float(g.rng.uniform(-1, 0.2)) if g.rng.random() < 0.8 else None
    hi = float(g.rng.uniform(0.3, 2)) if g.rng.random() < 0.8 or lo is None else None
    y = g.new(x.shape, max(x.lo, lo if lo is not None else x.lo), min(x.hi, hi if hi is not None else x.hi),
              x.exact)
    y.lo, y.hi = min(y.lo, y.hi), max(y.lo, y.hi)
    if g.opset < 11:
        attrs = {}
        if lo is not None:
            attrs["min"] = lo
        if hi is not None:
            attrs["max"] = hi
        g.node("Clip", [x.name], y, **attrs)
    else:
        ins = [x.name, g.const(np.array(lo, np.float32)).name if lo is not None else "",
               g.const(np.array(hi, np.float32)).name if hi is not None else ""]
        while ins and not ins[-1]:
            ins.pop()
        g.node("Clip", ins, y)


def _operand(g: OnnxGen, x: V, lo=-1.0, hi=1.0, pred=None):
    """A second operand that broadcasts with x: another value or a constant."""
    if g.rng.random() < 0.5:
        cands = [v for v in g.pool if v.dtype == x.dtype and v is not x and (pred is None or pred(v))]
        g.rng.shuffle(cands)
        for v in cands:
            try:
                s = np.broadcast_shapes(x.shape, v.shape)
            except ValueError:
                continue
            if int(np.prod(s)) <= MAX_ELEMS:
                return v
    if g.rng.random() < 0.1:
        return x  # x op x
    return g.fconst(g.bshape(x.shape), lo, hi)


def gen_binary(g: OnnxGen):
    op = ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "PRelu", "Mod"][
        int(g.rng.choice(9, p=[.2, .15, .2, .12, .08, .08, .07, .05, .05]))]
    if not g.has(op):
        raise Reject
    x = g.pick()
    if op == "Div":
        b = _operand(g, x, 0.5, 2.0, pred=lambda v: v.lo >= 0.25 or v.hi <= -0.25)
        if b.lo < 0.25 and b.hi > -0.25:
            raise Reject
        m = 1 / min(abs(b.lo), abs(b.hi)) if b.lo * b.hi > 0 else 4
        lo, hi = -x.amax * m, x.amax * m
    elif op == "Pow":
        x = into_domain(g, "Pow", lambda v: v.lo >= 0.1 and v.hi <= 10)
        if g.rng.random() < 0.6:
            b = g.const(np.array(g.rng.choice([-1.0, 0.5, 2.0, 3.0, 1.5]), np.float32))
        else:
            b = _operand(g, x, -2, 2, pred=lambda v: v.amax <= 2)
        if b.amax > 3:
            raise Reject
        lo, hi = 0, max(x.hi, 1 / x.lo) ** b.amax
    elif op == "PRelu":
        s = g.bshape(x.shape)
        if len(s) > x.rank or any(a != 1 and a != d for a, d in zip(s[::-1], x.shape[::-1])):
            raise Reject
        b = g.fconst(s, -0.5, 0.5)
        lo, hi = min(x.lo, 0) * 0.5 + min(x.lo, 0), max(x.hi, 0)
    elif op == "Mod":
        if not x.exact:
            raise Reject
        b = g.const(np.array(g.rng.choice([0.5, 0.75, -0.3, 1.25]), np.float32))
        lo, hi = -b.amax, b.amax
        y = g.new(np.broadcast_shapes(x.shape, b.shape), lo, hi, False)
        g.node("Mod", [x.name, b.name], y, fmod=1)
        return
    else:
        b = _operand(g, x)
        if op == "Add":
            lo, hi = x.lo + b.lo, x.hi + b.hi
        elif op == "Sub":
            lo, hi = x.lo - b.hi, x.hi - b.lo
        elif op == "Mul":
            c = [x.lo * b.lo, x.lo * b.hi, x.hi * b.lo, x.hi * b.hi]
            lo, hi = min(c), max(c)
        elif op == "Max":
            lo, hi = max(x.lo, b.lo), max(x.hi, b.hi)
        else:
            lo, hi = min(x.lo, b.lo), min(x.hi, b.hi)
    try:
        shape = np.broadcast_shapes(x.shape, b.shape)
    except ValueError:
        raise Reject from None
    ins = [x.name, b.name]
    if op in ("Add", "Mul", "Max", "Min") and g.rng.random() < 0.3:
        ins = ins[::-1]
    exact = op in ("Max", "Min") and x.exact and b.exact
    g.node(op, ins, g.new(shape, lo, hi, exact))


def gen_variadic(g: OnnxGen):
    op = ["Sum", "Mean", "Max", "Min"][g.r(0, 3)]
    x = g.pick()
    k = g.r(1, 3)
    vs = [x] + [_operand(g, x) for _ in range(k - 1)]
    try:
        shape = np.broadcast_shapes(*[v.shape for v in vs])
    except ValueError:
        raise Reject from None
    lo = sum(v.lo for v in vs) if op == "Sum" else min(v.lo for v in vs)
    hi = sum(v.hi for v in vs) if op == "Sum" else max(v.hi for v in vs)
    g.node(op, [v.name for v in vs], g.new(shape, lo, hi, op in ("Max", "Min") and
                                             all(v.exact for v in vs)))


def gen_compare(g: OnnxGen):
    op = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"][g.r(0, 4)]
    if op in ("LessOrEqual", "GreaterOrEqual") and g.opset < 12:
        raise Reject
    x = g.pick(lambda v: v.exact)
    b = _operand(g, x, pred=lambda v: v.exact)
    if not b.exact:
        b = g.const(np.round(g.rng.uniform(-1, 1, g.bshape(x.shape)) * 4).astype(np.float32) / 4)
    c = g.new(np.broadcast_shapes(x.shape, b.shape), 0, 1, True, "bool")
    g.node(op, [x.name, b.name], c)
    # bools back to floats, sometimes through logic ops
    if g.rng.random() < 0.5:
        other = g.pick(lambda v: v.shape == c.shape or True, dtype="bool")
        try:
            s = np.broadcast_shapes(c.shape, other.shape)
        except ValueError:
            s, other = c.shape, c
        op2 = ["And", "Or", "Xor"][g.r(0, 2)]
        c2 = g.new(s, 0, 1, True, "bool")
        g.node(op2, [c.name, other.name], c2)
        c = c2
    if g.rng.random() < 0.3:
        c3 = g.new(c.shape, 0, 1, True, "bool")
        g.node("Not", [c.name], c3)
        c = c3
    g.node("Cast", [c.name], g.new(c.shape, 0, 1, True), to=1)


def gen_cast(g: OnnxGen):
    x = g.pick(lambda v: v.exact and v.amax < 1e5)
    to = str(g.rng.choice(["int32", "int64"]))
    src = x
    if g.rng.random() < 0.7:  # times 4: still exact, more distinct integers
        src = g.new(x.shape, x.lo * 4, x.hi * 4, True)
        g.node("Mul", [x.name, g.const(np.array(4.0, np.float32)).name], src)
    i = g.new(x.shape, math.trunc(src.lo), math.trunc(src.hi), True, to)
    g.node("Cast", [src.name], i, to=_ELEM[to])
    g.node("Cast", [i.name], g.new(x.shape, i.lo, i.hi, True), to=1)


def _factor(g: OnnxGen, n: int, rank: int):
    dims = []
    rest = n
    for _ in range(rank - 1):
        divs = [d for d in range(1, rest + 1) if rest % d == 0]
        d = divs[g.r(0, len(divs) - 1)]
        dims.append(d)
        rest //= d
    dims.append(rest)
    g.rng.shuffle(dims)
    return dims


def gen_reshape(g: OnnxGen):
    x = g.pick()
    which = g.r(0, 5)
    y = lambda shape: g.new(shape, x.lo, x.hi, x.exact)  # noqa: E731
    if which == 0 and g.has("Flatten"):
        axis = g.r(-x.rank, x.rank) if x.rank else 0
        a = axis + x.rank if axis < 0 else axis
        shape = (int(np.prod(x.shape[:a])), int(np.prod(x.shape[a:])))
        g.node("Flatten", [x.name], y(shape), axis=axis)
    elif which == 1 and g.has("Squeeze") and 1 in x.shape:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
        if g.rng.random() < 0.5:
            axes = [a for a in axes if g.rng.random() < 0.6] or axes[:1]
            axes_neg = [a - x.rank if g.rng.random() < 0.3 else a for a in axes]
        else:
            axes_neg = None
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        if axes_neg is None:
            g.node("Squeeze", [x.name], y(shape))
        elif g.opset >= 13:
            g.node("Squeeze", [x.name, g.ints(axes_neg)], y(shape))
        else:
            g.node("Squeeze", [x.name], y(shape), axes=axes_neg)
    elif which == 2 and g.has("Unsqueeze") and x.rank < 5:
        k = g.r(1, 2)
        r = x.rank + k
        axes = sorted(int(a) for a in g.rng.choice(r, k, replace=False))
        shape = list(x.shape)
        for a in axes:
            shape.insert(a, 1)
        axes_in = [a - r if g.rng.random() < 0.3 else a for a in axes]
        if g.opset >= 13:
            g.node("Unsqueeze", [x.name, g.ints(axes_in)], y(tuple(shape)))
        else:
            g.node("Unsqueeze", [x.name], y(tuple(shape)), axes=axes_in)
    elif which == 3 and g.has("Identity"):
        g.node("Identity", [x.name], y(x.shape))
    else:
        rank = g.r(1, 5)
        dims = _factor(g, x.size, rank)
        spec = list(dims)
        if g.rng.random() < 0.4:
            spec[g.r(0, rank - 1)] = -1
        for i in range(min(rank, x.rank)):
            if dims[i] == x.shape[i] and spec[i] != -1 and g.rng.random() < 0.3:
                spec[i] = 0
        g.node("Reshape", [x.name, g.ints(spec)], y(tuple(dims)))


def gen_transpose(g: OnnxGen):
    x = g.pick(lambda v: v.rank >= 2)
    if g.rng.random() < 0.2:
        perm = None
        shape = x.shape[::-1]
        g.node("Transpose", [x.name], g.new(shape, x.lo, x.hi, x.exact))
        return
    perm = [int(p) for p in g.rng.permutation(x.rank)]
    shape = tuple(x.shape[p] for p in perm)
    g.node("Transpose", [x.name], g.new(shape, x.lo, x.hi, x.exact), perm=perm)


def gen_concat(g: OnnxGen):
    x = g.pick(lambda v: v.rank >= 1)
    axis = g.r(0, x.rank - 1)
    vs = [x]
    for _ in range(g.r(1, 3)):
        cands = [v for v in g.pool if v.dtype == "float32" and v.rank == x.rank and all(
            a == b for i, (a, b) in enumerate(zip(v.shape, x.shape)) if i != axis)]
        if cands and g.rng.random() < 0.7:
            vs.append(cands[g.r(0, len(cands) - 1)])
        else:
            s = list(x.shape)
            s[axis] = g.r(1, 4)
            vs.append(g.fconst(s))
    shape = list(x.shape)
    shape[axis] = sum(v.shape[axis] for v in vs)
    ax = axis - x.rank if g.rng.random() < 0.3 else axis
    g.node("Concat", [v.name for v in vs], g.new(shape, min(v.lo for v in vs), max(v.hi for v in vs),
                                                   all(v.exact for v in vs)), axis=ax)


def gen_pad(g: OnnxGen):
    x = g.pick(lambda v: v.rank >= 1)
    mode = ["constant", "constant", "reflect", "edge"][g.r(0, 3)]
    pads = []
    for i in range(2 * x.rank):
        d = x.shape[i % x.rank]
        m = min(3, d - 1) if mode == "reflect" else 3
        pads.append(g.r(0, m) if g.rng.random() < 0.5 else 0)
    if not any(pads):
        axes = [i for i, d in enumerate(x.shape) if d > 1 or mode != "reflect"]
        if not axes:
            raise Reject
        pads[axes[g.r(0, len(axes) - 1)] + (x.rank if g.rng.random() < 0.5 else 0)] = 1
    value = float(np.float32(g.rng.uniform(-1, 1))) if mode == "constant" and g.rng.random() < 0.5 else None
    shape = tuple(d + pads[i] + pads[i + x.rank] for i, d in enumerate(x.shape))
    lo, hi = x.lo, x.hi
    if mode == "constant":
        v = value or 0.0
        lo, hi = min(lo, v), max(hi, v)
    y = g.new(shape, lo, hi, x.exact)
    if g.opset < 11:
        g.node("Pad", [x.name], y, mode=mode, pads=pads, **({"value": value} if value is not None else {}))
    else:
        ins = [x.name, g.ints(pads)]
        if value is not None:
            ins.append(g.const(np.array(value, np.float32)).name)
        g.node("Pad", ins, y, mode=mode)


def _conv_out(n, k, s, d, p0, p1):
    return (n + p0 + p1 - ((k - 1) * d + 1)) // s + 1


def gen_conv(g: OnnxGen):
    x = g.pick(lambda v: v.rank in (3, 4) and v.shape[1] <= 16)
    C = x.shape[1]
    sp = x.shape[2:]
    nd = len(sp)
    divs = [d for d in range(1, C + 1) if C % d == 0]
    group = divs[g.r(0, len(divs) - 1)] if g.rng.random() < 0.5 else 1
    O = group * g.r(1, 3) if group > 1 else g.r(1, 8)
    ks = [g.r(1, min(4, s + 2)) for s in sp]
    strides = [g.r(1, 3) for _ in sp] if g.rng.random() < 0.5 else [1] * nd
    dil = [g.r(1, 2) for _ in sp] if g.rng.random() < 0.25 else [1] * nd
    auto = str(g.rng.choice(["NOTSET", "NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    attrs = {}
    if g.rng.random() < 0.7 or auto != "NOTSET":
        attrs["kernel_shape"] = ks
    if auto == "NOTSET":
        pads = [g.r(0, k - 1) if k > 1 and g.rng.random() < 0.6 else 0 for k in ks * 2]
        if any(pads) or g.rng.random() < 0.3:
            attrs["pads"] = pads
    else:
        attrs["auto_pad"] = auto
        pads = [0] * (2 * nd)
        if auto.startswith("SAME"):
            dil = [1] * nd  # onnxruntime: "Dilation not supported for SAME_UPPER/SAME_LOWER"
    out = []
    for i in range(nd):
        if auto.startswith("SAME"):
            out.append(-(-sp[i] // strides[i]))
        else:
            out.append(_conv_out(sp[i], ks[i], strides[i], dil[i], pads[i], pads[i + nd]))
    if min(out) < 1:
        raise Reject
    if any(s > 1 for s in strides) or g.rng.random() < 0.2:
        attrs["strides"] = strides
    if any(d > 1 for d in dil) or g.rng.random() < 0.1:
        attrs["dilations"] = dil
    if group > 1 or g.rng.random() < 0.1:
        attrs["group"] = group
    fan = (C // group) * int(np.prod(ks))
    w = g.fconst((O, C // group, *ks), -1.5 / math.sqrt(fan), 1.5 / math.sqrt(fan), "w")
    ins = [x.name, w.name]
    if g.rng.random() < 0.6:
        ins.append(g.fconst((O,), -0.5, 0.5, "b").name)
    m = x.amax * 1.5 * math.sqrt(fan) + 0.5
    g.node("Conv", ins, g.new((x.shape[0], O, *out), -m, m), **attrs)


# POOL_NOTE: with ceil_mode, ONNX's shape inference and onnxruntime/PyTorch disagree on
# whether a last window that starts in the end padding counts, and what an average over
# a window hanging past the padding divides by.  The generator leaves those cases out
# (a spec ambiguity, not an edgec bug); the ONNX node tests cover what the spec says.

def gen_pool(g: OnnxGen):
    x = g.pick(lambda v: v.rank == 4)
    op = ["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"][
        int(g.rng.choice(4, p=[.4, .4, .1, .1]))]
    N, C, H, W = x.shape
    if op.startswith("Global"):
        g.node(op, [x.name], g.new((N, C, 1, 1), x.lo, x.hi, x.exact and op == "GlobalMaxPool"))
        return
    ks = [g.r(1, min(4, H + 1)), g.r(1, min(4, W + 1))]
    strides = [g.r(1, 3), g.r(1, 3)]
    attrs = {"kernel_shape": ks}
    if g.rng.random() < 0.7:
        attrs["strides"] = strides
    else:
        strides = [1, 1]
    dil = [1, 1]
    if op == "MaxPool" and g.rng.random() < 0.2:
        dil = [g.r(1, 2), g.r(1, 2)]
        attrs["dilations"] = dil
    auto = str(g.rng.choice(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    ceil = g.r(0, 1) if g.rng.random() < 0.3 else 0
    pads = [0, 0, 0, 0]
    if auto == "NOTSET":
        pads = [g.r(0, k - 1) if k > 1 and g.rng.random() < 0.5 else 0 for k in ks * 2]
        if any(pads):
            attrs["pads"] = pads
        if ceil:
            attrs["ceil_mode"] = 1
    else:
        if any(d > 1 for d in dil):
            raise Reject
        attrs["auto_pad"] = auto
        ceil = 0
    if op == "AveragePool" and g.rng.random() < 0.4:
        attrs["count_include_pad"] = 1
    sp = [H, W]
    out = []
    for i in range(2):
        if auto.startswith("SAME"):
            out.append(-(-sp[i] // strides[i]))
            if (out[-1] - 1) * strides[i] + ks[i] < sp[i]:
                raise Reject  # negative SAME padding: onnxruntime refuses it for pooling
            continue
        if auto == "VALID":
            p0 = p1 = 0
        else:
            p0, p1 = pads[i], pads[i + 2]
        eff = (ks[i] - 1) * dil[i] + 1
        span = sp[i] + p0 + p1 - eff
        if span < 0:
            raise Reject
        if ceil:
            o = -(-span // strides[i]) + 1
            if (o - 1) * strides[i] >= sp[i] + p0:
                raise Reject  # the last window would start in the end padding: see POOL_NOTE
        else:
            o = span // strides[i] + 1
        out.append(o)
    if ceil and op == "AveragePool" and any(
            ((o - 1) * s + k) > n + p0 + p1 for o, s, k, n, p0, p1 in
            zip(out, strides, ks, sp, pads[:2], pads[2:])):
        raise Reject  # see POOL_NOTE
    lo, hi = x.lo, x.hi
    if op == "AveragePool" and (any(pads) or auto.startswith("SAME")):
        lo, hi = min(lo, 0), max(hi, 0)
    if op == "MaxPool" and (any(pads) or auto.startswith("SAME")):
        pass
    g.node(op, [x.name], g.new((N, C, *out), lo, hi, x.exact and op == "MaxPool"), **attrs)


def gen_batchnorm(g: OnnxGen):
    x = g.pick(lambda v: v.rank >= 2)
    C = x.shape[1]
    scale = g.fconst((C,), 0.5, 1.5)
    bias = g.fconst((C,), -0.5, 0.5)
    mean = g.fconst((C,), -0.5, 0.5)
    var = g.fconst((C,), 0.25, 2.0)
    eps = float(g.rng.choice([1e-5, 1e-3]))
    m = (x.amax + 0.5) * 1.5 / 0.5 + 0.5
    g.node("BatchNormalization", [x.name, scale.name, bias.name, mean.name, var.name],
           g.new(x.shape, -m, m), epsilon=eps)


def gen_gemm(g: OnnxGen):
    x = g.pick(lambda v: v.rank == 2)
    tA = g.r(0, 1) if g.rng.random() < 0.3 else 0
    M, K = (x.shape[1], x.shape[0]) if tA else x.shape
    N = g.r(1, 12)
    tB = g.r(0, 1)
    if g.rng.random() < 0.75:
        B = g.fconst((N, K) if tB else (K, N), -1 / math.sqrt(K), 1 / math.sqrt(K), "w")
    else:
        cands = [v for v in g.pool if v.dtype == "float32" and v.rank == 2 and v is not x and
                 (v.shape[1] if tB else v.shape[0]) == K]
        if not cands:
            raise Reject
        B = cands[g.r(0, len(cands) - 1)]
        N = B.shape[0] if tB else B.shape[1]
    alpha = float(g.rng.choice([1.0, 1.0, 0.5, -2.0]))
    beta = float(g.rng.choice([1.0, 1.0, 0.25, 0.0]))
    ins = [x.name, B.name]
    if g.rng.random() < 0.7:
        cs = [(N,), (1, N), (M, N), (M, 1), ()][g.r(0, 4)]
        ins.append(g.fconst(cs, -0.5, 0.5, "c").name)
    attrs = {}
    if tA:
        attrs["transA"] = 1
    if tB:
        attrs["transB"] = 1
    if alpha != 1.0:
        attrs["alpha"] = alpha
    if beta != 1.0:
        attrs["beta"] = beta
    m = abs(alpha) * x.amax * B.amax * K + 0.5
    g.node("Gemm", ins, g.new((M, N), -m, m), **attrs)


def gen_matmul(g: OnnxGen):
    x = g.pick(lambda v: v.rank >= 1)
    K = x.shape[-1]
    if g.rng.random() < 0.6:
        N = g.r(1, 10)
        if g.rng.random() < 0.2:
            shape = (K,)
        elif g.rng.random() < 0.3 and x.rank >= 3:
            shape = (x.shape[-3] if g.rng.random() < 0.5 else 1, K, N)
        else:
            shape = (K, N)
        B = g.fconst(shape, -1 / math.sqrt(K), 1 / math.sqrt(K), "w")
    else:
        cands = [v for v in g.pool if v.dtype == "float32" and v.rank >= 2 and v.shape[-2] == K]
        if not cands:
            raise Reject
        B = cands[g.r(0, len(cands) - 1)]
    a2 = (1,) + x.shape if x.rank == 1 else x.shape
    b2 = B.shape + (1,) if B.rank == 1 else B.shape
    try:
        batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    except ValueError:
        raise Reject from None
    out = list(batch) + [a2[-2], b2[-1]]
    if B.rank == 1:
        out.pop(-1)
    if x.rank == 1:
        out.pop(-2 if B.rank != 1 else -1)
    m = x.amax * B.amax * K + 0.1
    g.node("MatMul", [x.name, B.name], g.new(tuple(out), -m, m))


def gen_softmax(g: OnnxGen):
    op = ["Softmax", "LogSoftmax", "Hardmax"][int(g.rng.choice(3, p=[.5, .35, .15]))]
    pred = (lambda v: v.exact and v.rank >= 1) if op == "Hardmax" else (lambda v: v.rank >= 1 and v.amax < 50)
    x = g.pick(pred)
    attrs = {}
    if g.rng.random() < 0.8 or (g.opset < 13 and x.rank < 2):  # the old default axis is 1
        attrs["axis"] = g.r(-x.rank, x.rank - 1)
    if op == "Softmax":
        lo, hi = 0, 1
    elif op == "Hardmax":
        lo, hi = 0, 1
    else:
        lo, hi = -2 * x.amax - math.log(x.size) - 1, 0
    g.node(op, [x.name], g.new(x.shape, lo, hi, op == "Hardmax"), **attrs)


# --- operators that landed later: reductions, slicing, gathers, Where ... ----------------

_REDUCE = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
           "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")


def gen_reduce(g: OnnxGen):
    names = [k for k in _REDUCE if g.has(k)]
    op = names[g.r(0, len(names) - 1)]
    pred = {"ReduceLogSum": lambda v: v.lo >= 0.05, "ReduceLogSumExp": lambda v: v.amax < 20,
            "ReduceProd": lambda v: v.amax <= 1.5}.get(op, lambda v: True)
    x = g.pick(lambda v: v.rank >= 1 and pred(v))
    r = x.rank
    axes = sorted(int(a) for a in g.rng.choice(r, g.r(1, r), replace=False))
    if op == "ReduceProd" and int(np.prod([x.shape[a] for a in axes])) > 8:
        raise Reject
    keep = g.r(0, 1)
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape)) if keep else \
        tuple(d for i, d in enumerate(x.shape) if i not in axes)
    n = int(np.prod([x.shape[a] for a in axes]))
    lo, hi = {"ReduceSum": lambda: (x.lo * n, x.hi * n), "ReduceMean": lambda: (x.lo, x.hi),
              "ReduceMax": lambda: (x.lo, x.hi), "ReduceMin": lambda: (x.lo, x.hi),
              "ReduceProd": lambda: (-x.amax ** n - 1, x.amax ** n + 1),
              "ReduceL1": lambda: (0, x.amax * n), "ReduceL2": lambda: (0, x.amax * math.sqrt(n)),
              "ReduceSumSquare": lambda: (0, x.amax ** 2 * n),
              "ReduceLogSum": lambda: (math.log(max(x.lo, 1e-3)), math.log(x.hi * n) + 1),
              "ReduceLogSumExp": lambda: (x.lo - 1, x.hi + math.log(n) + 1)}[op]()
    exact = op in ("ReduceMax", "ReduceMin") and x.exact
    all_axes = len(axes) == r
    spec = [a - r if g.rng.random() < 0.3 else a for a in axes]
    attrs = {"keepdims": keep} if keep == 0 or g.rng.random() < 0.3 else {}
    axes_input = g.opset >= 18 or (op == "ReduceSum" and g.opset >= 13)
    y = g.new(shape, lo, hi, exact)
    if all_axes and g.rng.random() < 0.3:
        g.node(op, [x.name], y, **attrs)          # no axes: all of them
    elif axes_input:
        g.node(op, [x.name, g.ints(spec)], y, **attrs)
    else:
        g.node(op, [x.name], y, axes=spec, **attrs)


def gen_argmax(g: OnnxGen):
    op = ["ArgMax", "ArgMin"][g.r(0, 1)]
    x = g.pick(lambda v: v.exact and v.rank >= 1)
    axis = g.r(-x.rank, x.rank - 1)
    a = axis + x.rank if axis < 0 else axis
    keep = g.r(0, 1)
    shape = tuple(1 if i == a else d for i, d in enumerate(x.shape)) if keep else \
        tuple(d for i, d in enumerate(x.shape) if i != a)
    attrs = {"axis": axis, "keepdims": keep}
    if g.opset >= 12 and g.rng.random() < 0.5:
        attrs["select_last_index"] = g.r(0, 1)
    i = g.new(shape, 0, x.shape[a] - 1, True, "int64")
    g.node(op, [x.name], i, **attrs)
    if g.rng.random() < 0.5:
        g.node("Cast", [i.name], g.new(shape, 0, x.shape[a] - 1, True), to=1)


def _slice_len(d, s, e, st):
    s = s + d if s < 0 else s
    e = e + d if e < 0 else e
    if st > 0:
        s, e = min(max(s, 0), d), min(max(e, 0), d)
        return max(0, -(-(e - s) // st))
    s, e = min(max(s, 0), d - 1), min(max(e, -1), d - 1)
    return max(0, -(-(s - e) // -st))


def gen_slice(g: OnnxGen):
    x = g.pick(lambda v: v.rank >= 1)
    r = x.rank
    axes = [int(a) for a in g.rng.choice(r, g.r(1, r), replace=False)]
    starts, ends, steps = [], [], []
    shape = list(x.shape)
    big = 2 ** 63 - 1
    for a in axes:
        d = x.shape[a]
        step = int(g.rng.choice([1, 1, 1, 2, 3, -1, -2]))
        for _ in range(20):
            s0 = g.r(-d - 2, d + 2)
            e0 = int(g.rng.choice([g.r(-d - 2, d + 2), big, -big - 1]))
            n = _slice_len(d, s0, e0, step)
            if n >= 1:
                break
        else:
            raise Reject
        starts.append(s0)
        ends.append(e0)
        steps.append(step)
        shape[a] = n
    spec_axes = [a - r if g.rng.random() < 0.3 else a for a in axes]
    ins = [x.name, g.ints(starts), g.ints(ends)]
    if g.rng.random() < 0.8 or any(s != 1 for s in steps) or sorted(axes) != list(range(len(axes))):
        ins.append(g.ints(spec_axes))
        if any(s != 1 for s in steps) or g.rng.random() < 0.3:
            ins.append(g.ints(steps))
    else:
        # without axes: starts/ends apply to the first len(starts) axes in order
        order = sorted(range(len(axes)), key=lambda k: axes[k])
        ins = [x.name, g.ints([starts[k] for k in order]), g.ints([ends[k] for k in order])]
    g.node("Slice", ins, g.new(tuple(shape), x.lo, x.hi, x.exact))


def gen_split(g: OnnxGen):
    x = g.pick(lambda v: v.rank >= 1 and max(v.shape) >= 2)
    axes = [i for i, d in enumerate(x.shape) if d >= 2]
    a = axes[g.r(0, len(axes) - 1)]
    d = x.shape[a]
    k = g.r(2, min(4, d))
    cuts = sorted(int(c) for c in g.rng.choice(np.arange(1, d), k - 1, replace=False))
    parts = [b - a_ for a_, b in zip([0] + cuts, cuts + [d])]
    outs = []
    for p in parts:
        s = list(x.shape)
        s[a] = p
        outs.append(g.new(tuple(s), x.lo, x.hi, x.exact))
    axis = a - x.rank if g.rng.random() < 0.3 else a
    if g.opset >= 18 and g.rng.random() < 0.3:
        chunk = -(-d // k)
        parts2 = [min(chunk, d - i * chunk) for i in range(k)]
        if min(parts2) < 1:
            raise Reject
        outs = []
        for p in parts2:
            s = list(x.shape)
            s[a] = p
            outs.append(g.new(tuple(s), x.lo, x.hi, x.exact))
        g.node("Split", [x.name], outs, axis=axis, num_outputs=k)
    elif g.opset >= 13:
        g.node("Split", [x.name, g.ints(parts)], outs, axis=axis)
    else:
        g.node("Split", [x.name], outs, axis=axis, split=parts)


def gen_gather(g: OnnxGen):
    which = [w for w in ("Gather", "GatherElements", "GatherND") if g.has(w)]
    op = which[g.r(0, len(which) - 1)]
    x = g.pick(lambda v: v.rank >= 1)
    r = x.rank
    if op == "Gather":
        a = g.r(0, r - 1)
        ishape = tuple(g.r(1, 4) for _ in range(g.r(0, 2)))
        idx = g.rng.integers(-x.shape[a], x.shape[a], ishape).astype(np.int64)
        shape = x.shape[:a] + ishape + x.shape[a + 1:]
        g.node("Gather", [x.name, g.const(idx, "idx").name], g.new(shape, x.lo, x.hi, x.exact),
               axis=a - r if g.rng.random() < 0.3 else a)
    elif op == "GatherElements":
        a = g.r(0, r - 1)
        ishape = tuple(g.r(1, d) if i != a else g.r(1, 5) for i, d in enumerate(x.shape))
        idx = g.rng.integers(-x.shape[a], x.shape[a], ishape).astype(np.int64)
        g.node("GatherElements", [x.name, g.const(idx, "idx").name],
               g.new(ishape, x.lo, x.hi, x.exact), axis=a - r if g.rng.random() < 0.3 else a)
    else:
        b = g.r(0, r - 1) if g.opset >= 12 and g.rng.random() < 0.3 else 0
        k = g.r(1, r - b)
        lead = list(x.shape[:b]) + [g.r(1, 3) for _ in range(g.r(0, 1))]
        ishape = tuple(lead) + (k,)
        idx = np.stack([g.rng.integers(-x.shape[b + j], x.shape[b + j], ishape[:-1])
                        for j in range(k)], axis=-1).astype(np.int64)
        shape = tuple(lead) + x.shape[b + k:]
        if not shape or int(np.prod(shape)) == 0:
            raise Reject
        attrs = {"batch_dims": b} if b else {}
        g.node("GatherND", [x.name, g.const(idx, "idx").name], g.new(shape, x.lo, x.hi, x.exact),
               **attrs)


def gen_scatter(g: OnnxGen):
    op = [w for w in ("ScatterElements", "ScatterND") if g.has(w)]
    op = op[g.r(0, len(op) - 1)]
    x = g.pick(lambda v: v.rank >= 1)
    r = x.rank
    red = "none"
    if g.opset >= 16 and g.rng.random() < 0.4:
        red = str(g.rng.choice(["add", "mul"] + (["max", "min"] if g.opset >= 18 else [])))
    if op == "ScatterElements":
        a = g.r(0, r - 1)
        ishape = tuple(g.r(1, d) for d in x.shape)
        # distinct positions along the axis for every line (duplicates are undefined without
        # a reduction)
        lines = int(np.prod([d for i, d in enumerate(ishape) if i != a]))
        pos = np.stack([g.rng.permutation(x.shape[a])[:ishape[a]] for _ in range(lines)])
        pos = np.moveaxis(pos.reshape([d for i, d in enumerate(ishape) if i != a] + [ishape[a]]),
                          -1, a).astype(np.int64)
        if g.rng.random() < 0.3:
            pos = pos - x.shape[a]
        upd = g.fconst(ishape, -1, 1, "u") if g.rng.random() < 0.6 else None
        if upd is None:
            cands = [v for v in g.pool if v.dtype == "float32" and v.shape == ishape]
            if not cands:
                raise Reject
            upd = cands[g.r(0, len(cands) - 1)]
        attrs = {"axis": a}
        if red != "none":
            attrs["reduction"] = red
        lo, hi = min(x.lo, upd.lo), max(x.hi, upd.hi)
        if red in ("add", "mul"):
            lo, hi = -(x.amax + 1) * (upd.amax + 1), (x.amax + 1) * (upd.amax + 1)
        g.node("ScatterElements", [x.name, g.const(pos, "idx").name, upd.name],
               g.new(x.shape, lo, hi, x.exact and upd.exact and red in ("none", "max", "min")), **attrs)
    else:
        k = g.r(1, r)
        n = g.r(1, min(4, int(np.prod(x.shape[:k]))))
        flat = g.rng.choice(int(np.prod(x.shape[:k])), n, replace=False)
        idx = np.stack(np.unravel_index(flat, x.shape[:k]), axis=-1).astype(np.int64)
        ushape = (n,) + x.shape[k:]
        upd = g.fconst(ushape, -1, 1, "u")
        attrs = {"reduction": red} if red != "none" else {}
        lo, hi = min(x.lo, upd.lo), max(x.hi, upd.hi)
        if red in ("add", "mul"):
            lo, hi = -(x.amax + 1) * 2, (x.amax + 1) * 2
        g.node("ScatterND", [x.name, g.const(idx, "idx").name, upd.name],
               g.new(x.shape, lo, hi, x.exact and red in ("none", "max", "min")), **attrs)


def gen_where(g: OnnxGen):
    x = g.pick()
    c = [v for v in g.pool if v.dtype == "bool"]
    cond = None
    g.rng.shuffle(c)
    for v in c:
        try:
            np.broadcast_shapes(v.shape, x.shape)
            cond = v
            break
        except ValueError:
            continue
    if cond is None:
        e = g.pick(lambda v: v.exact)
        try:
            np.broadcast_shapes(e.shape, x.shape)
        except ValueError:
            e = x if x.exact else None
        if e is None:
            raise Reject
        cond = g.new(e.shape, 0, 1, True, "bool")
        g.node("Greater", [e.name, g.const(np.array(0.0, np.float32)).name], cond)
    y = _operand(g, x)
    try:
        shape = np.broadcast_shapes(cond.shape, x.shape, y.shape)
    except ValueError:
        raise Reject from None
    g.node("Where", [cond.name, x.name, y.name], g.new(shape, min(x.lo, y.lo), max(x.hi, y.hi),
                                                        x.exact and y.exact))


def gen_expand(g: OnnxGen):
    x = g.pick(lambda v: v.size <= 64)
    if g.rng.random() < 0.5 or not g.has("Tile"):
        target = [d if d != 1 or g.rng.random() < 0.5 else g.r(2, 3) for d in x.shape]
        target = [g.r(1, 3) for _ in range(g.r(0, 1))] + target
        spec = [1 if (i >= len(target) - x.rank and d == x.shape[i - (len(target) - x.rank)]
                      and g.rng.random() < 0.3) else d for i, d in enumerate(target)]
        shape = np.broadcast_shapes(x.shape, tuple(spec))
        g.node("Expand", [x.name, g.ints(spec)], g.new(shape, x.lo, x.hi, x.exact))
    else:
        reps = [g.r(1, 3) for _ in x.shape]
        shape = tuple(d * k for d, k in zip(x.shape, reps))
        g.node("Tile", [x.name, g.ints(reps)], g.new(shape, x.lo, x.hi, x.exact))


def gen_cumsum(g: OnnxGen):
    ops_ = [o for o in ("CumSum", "CumProd") if g.has(o)]
    op = ops_[g.r(0, len(ops_) - 1)]
    x = g.pick(lambda v: v.rank >= 1 and (op == "CumSum" or v.amax <= 1.5))
    a = g.r(-x.rank, x.rank - 1)
    d = x.shape[a]
    if op == "CumProd" and d > 8:
        raise Reject
    attrs = {}
    if g.rng.random() < 0.3:
        attrs["exclusive"] = 1
    if g.rng.random() < 0.3:
        attrs["reverse"] = 1
    axis = g.const(np.array(a, np.int64 if g.rng.random() < 0.5 else np.int32), "axis")
    lo, hi = (x.lo * d, x.hi * d) if op == "CumSum" else (-(x.amax ** d) - 1, x.amax ** d + 1)
    g.node(op, [x.name, axis.name], g.new(x.shape, min(lo, 0), max(hi, 0)), **attrs)


def gen_trilu(g: OnnxGen):
    x = g.pick(lambda v: v.rank >= 2)
    ins = [x.name]
    if g.rng.random() < 0.6:
        ins.append(g.const(np.array(g.r(-3, 3), np.int64), "k").name)
    attrs = {"upper": g.r(0, 1)} if g.rng.random() < 0.7 else {}
    g.node("Trilu", ins, g.new(x.shape, min(x.lo, 0), max(x.hi, 0), x.exact), **attrs)


def gen_shape_ops(g: OnnxGen):
    """Shape arithmetic that edgec folds at compile time: Reshape(y, Shape(x)),
    ConstantOfShape(Shape(x)) and Range added to values."""
    x = g.pick()
    which = g.r(0, 2)
    if which == 0 and g.has("Shape"):
        cands = [v for v in g.pool if v.dtype == "float32" and v.size == x.size and v is not x]
        if not cands:
            raise Reject
        y = cands[g.r(0, len(cands) - 1)]
        s = g.new((x.rank,), 0, 0, True, "int64")
        g.node("Shape", [x.name], s)
        g.pool.remove(s)
        g.node("Reshape", [y.name, s.name], g.new(x.shape, y.lo, y.hi, y.exact))
    elif which == 1 and g.has("ConstantOfShape") and g.has("Shape"):
        s = g.new((x.rank,), 0, 0, True, "int64")
        g.node("Shape", [x.name], s)
        g.pool.remove(s)
        v = float(np.float32(g.rng.uniform(-1, 1)))
        c = g.new(x.shape, v, v, True)
        from onnx import helper, TensorProto
        g.node("ConstantOfShape", [s.name], c, value=helper.make_tensor("v", TensorProto.FLOAT, [1], [v]))
        g.pool.remove(c)
        g.node("Add", [x.name, c.name], g.new(x.shape, x.lo + v, x.hi + v, False))
    elif which == 2 and g.has("Range") and x.rank >= 1:
        n = x.shape[-1]
        start, delta = float(g.rng.choice([0.0, -1.0, 0.5])), float(g.rng.choice([0.25, -0.5, 1.0]))
        rv = g.new((n,), min(start, start + delta * n), max(start, start + delta * n), True)
        sc = g.const(np.array(start, np.float32))
        lc = g.const(np.array(start + delta * n - delta / 2, np.float32))
        dc = g.const(np.array(delta, np.float32))
        g.node("Range", [sc.name, lc.name, dc.name], rv)
        g.pool.remove(rv)
        g.node("Mul", [x.name, rv.name], g.new(x.shape, -x.amax * rv.amax, x.amax * rv.amax, False))
    else:
        raise Reject


# (function, weight, ONNX ops it needs)
GENERATORS = [
    (gen_unary, 10, ()),
    (gen_clip, 2, ("Clip",)),
    (gen_binary, 10, ()),
    (gen_variadic, 2, ("Sum", "Mean", "Max", "Min")),
    (gen_compare, 2, ("Equal", "Less", "Greater", "And", "Or", "Xor", "Not", "Cast")),
    (gen_cast, 1, ("Cast", "Mul")),
    (gen_reshape, 6, ("Reshape",)),
    (gen_transpose, 3, ("Transpose",)),
    (gen_concat, 3, ("Concat",)),
    (gen_pad, 3, ("Pad",)),
    (gen_conv, 8, ("Conv",)),
    (gen_pool, 5, ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")),
    (gen_batchnorm, 2, ("BatchNormalization",)),
    (gen_gemm, 4, ("Gemm",)),
    (gen_matmul, 4, ("MatMul",)),
    (gen_softmax, 4, ("Softmax", "LogSoftmax", "Hardmax")),
    (gen_reduce, 5, ("ReduceSum", "ReduceMean", "ReduceMax")),
    (gen_argmax, 2, ("ArgMax", "ArgMin", "Cast")),
    (gen_slice, 4, ("Slice",)),
    (gen_split, 2, ("Split",)),
    (gen_gather, 3, ("Gather", "GatherElements", "GatherND")),
    (gen_scatter, 2, ("ScatterElements", "ScatterND")),
    (gen_where, 2, ("Where", "Greater")),
    (gen_expand, 2, ("Expand", "Tile")),
    (gen_cumsum, 2, ("CumSum",)),
    (gen_trilu, 1, ("Trilu",)),
    (gen_shape_ops, 2, ("Shape", "Reshape", "Add", "Mul")),
]


def generate(rng: np.random.Generator, max_nodes: int = 12):
    """A random float ONNX model (ModelProto) and the ops it uses."""
    g = OnnxGen(rng, max_nodes)
    m = g.build()
    return m
