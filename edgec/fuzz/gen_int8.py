"""Random valid int8 TFLite graphs (built as edgec IR, written with
:mod:`edgec.exporters.tflite`) over the operators TFLite Micro and edgec both run
on int8: CONV_2D (per-tensor and per-channel, grouped), DEPTHWISE_CONV_2D (depth
multipliers), FULLY_CONNECTED (per-tensor and per-channel, keep_num_dims), ADD,
SUB, MUL (broadcasting), MAX_POOL_2D, AVERAGE_POOL_2D, SOFTMAX, RESHAPE,
TRANSPOSE, PAD, PADV2, CONCATENATION, QUANTIZE (float -> int8 and requantize)
and DEQUANTIZE, with fused activations.

Quantization parameters are random but realistic: each node's output scale and
zero point come from the range its float counterpart reaches on calibration
inputs (a float *shadow* graph evaluated with edgec's float references), times a
random factor (usually 0.5-2, sometimes far off so outputs saturate).  Weights
are int8 in [-127, 127] with random per-tensor or per-channel scales; biases are
int32.  The TFLite Micro constraints the generator respects: one quantization for
all inputs and the output of CONCATENATION (others go through a requantizing
QUANTIZE first), pooling and reshaping keep the input's quantization, SOFTMAX
writes scale 1/256 and zero point -128, ranks stay at most 4.
"""
from __future__ import annotations

import math

import numpy as np

from .. import ops
from ..ir.errors import EdgecError
from ..ir.graph import Graph, QuantParams
from ..ops.conv import tfl_pads

MAX_ELEMS = 4096
ACTS = [None, None, None, [0.0, float("inf")], [0.0, 6.0], [-1.0, 1.0]]


class Reject(Exception):
    pass


class Int8Gen:
    def __init__(self, rng: np.random.Generator, max_nodes: int = 10):
        self.rng = rng
        self.g = Graph("fuzz_int8")
        self.gf = Graph("shadow")        # float twin: same names, real values
        self.gf.fold_constants = False
        self.env: dict[str, np.ndarray] = {}  # real values of every tensor on calibration inputs
        self.k = 0
        self.max_nodes = max_nodes
        self.used: set[str] = set()
        self.float_inputs: dict[str, tuple] = {}  # float graph input -> (lo, hi) of its values

    # -- helpers -----------------------------------------------------------------
    def r(self, a, b):
        return int(self.rng.integers(a, b + 1))

    def name(self, hint):
        self.k += 1
        return f"{hint}{self.k}"

    def values(self, pred=lambda t: True):
        return [t for t in self.g.tensors.values()
                if not t.is_const and t.dtype == "int8" and pred(t)]

    def pick(self, pred=lambda t: True):
        c = self.values(pred)
        if not c:
            raise Reject
        w = np.arange(1, len(c) + 1, dtype=float) ** 1.5
        return c[int(self.rng.choice(len(c), p=w / w.sum()))]

    def rand_quant(self, lo: float, hi: float, wild: bool = True) -> QuantParams:
        """Scale and zero point covering [lo, hi] (which is widened to contain 0)."""
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        if hi - lo < 1e-6:
            hi = lo + 1e-3
        f = math.exp(self.rng.uniform(math.log(0.5), math.log(2.0)))
        if wild and self.rng.random() < 0.05:
            f = float(self.rng.choice([0.02, 0.1, 10.0, 50.0]))
        scale = float(np.float32((hi - lo) / 255.0 * f))
        zp = int(np.clip(round(-128 - lo / scale), -128, 127))
        if self.rng.random() < 0.05:
            zp = int(self.rng.integers(-128, 128))
        return QuantParams([scale], [zp])

    def real(self, q: np.ndarray, quant: QuantParams) -> np.ndarray:
        shape = [1] * q.ndim
        if quant.axis is not None:
            shape[quant.axis] = -1
        return (q.astype(np.float64) - quant.zero_point.reshape(shape)) * quant.scale.reshape(shape)

    def const(self, hint, data: np.ndarray, quant=None, real=None) -> str:
        """An IR constant and its float twin (``real``: the float value, default dequantized)."""
        name = self.name(hint)
        dt = str(data.dtype)
        self.g.add_tensor(name, data.shape, dt, data, quant)
        if real is None:
            real = self.real(data, quant) if quant is not None else data.astype(np.float64)
        self.gf.add_tensor(name, data.shape, "float32", np.asarray(real, np.float32))
        return name

    def node(self, op, ins, attrs, quant=None, out_dtype="int8"):
        """Add the node to both graphs, evaluate the twin, set the output quantization
        (given, or calibrated from the twin's values)."""
        out = self.name("t")
        self.g.add_node(op, ins, [out], attrs)
        t = self.g.tensors[out]
        if t.size > MAX_ELEMS or any(d <= 0 for d in t.shape) or t.rank > 4:
            raise Reject
        fattrs = dict(attrs)
        if op in ("Quantize", "Dequantize"):
            op_f, fattrs = "Reshape", {"shape": list(t.shape)}  # the twin is real-valued already
        elif op == "QLeakyRelu":
            op_f = "LeakyRelu"
        elif op == "QMean":
            op_f = "ReduceSum" if attrs.get("sum") else "ReduceMean"
            fattrs = {"axes": list(attrs["axes"]), "keepdims": attrs["keepdims"]}
        else:
            op_f = op
        if op == "Pad" and attrs.get("value") is not None:
            xq = self.g.tensors[ins[0]].quant
            fattrs["value"] = (attrs["value"] - int(xq.zero_point[0])) * float(xq.scale[0])
        self.gf.add_node(op_f, ins, [out], fattrs)
        fn = self.gf.nodes[-1]
        xs = [self.env[i] if not self.gf.tensors[i].is_const else self.gf.tensors[i].data.astype(np.float64)
              for i in ins]
        ys = ops.get(fn.op).reference(self.gf, fn, [np.asarray(x, np.float32) for x in xs])
        y = np.asarray(ys[0], np.float64)
        self.env[out] = y
        if not np.all(np.isfinite(y)) or np.abs(y).max(initial=0) > 1e4:
            raise Reject  # keep real values (and so scales) sane
        if out_dtype == "int8" and t.dtype == "int8":
            if quant is None:
                quant = self.rand_quant(float(y.min()), float(y.max()))
            t.quant = quant
            if self._multiplier(op, ins, quant) >= 2.0 ** 30:
                # TFLite's QuantizeMultiplier shifts by more than 30 there: undefined
                # behaviour in its C++, nothing to compare with
                raise Reject
        self.used.update(ins)
        return out

    def _multiplier(self, op, ins, yq) -> float:
        q = [self.g.tensors[i].quant for i in ins]
        so = float(yq.scale[0])
        if op in ("Conv", "FullyConnected"):
            return float(q[0].scale[0]) * float(np.max(q[1].scale)) / so
        if op == "Mul":
            return float(q[0].scale[0]) * float(q[1].scale[0]) / so
        if q and q[0] is not None:
            return float(q[0].scale[0]) / so
        return 1.0

    # -- graph ----------------------------------------------------------------------
    def build(self) -> Graph:
        n_in = self.r(1, 2)
        for i in range(n_in):
            if self.rng.random() < 0.65:
                shape = (1, self.r(1, 10), self.r(1, 10), self.r(1, 8))
            else:
                r = self.r(1, 3)
                shape = tuple(self.r(1, 8) for _ in range(r))
            self._input(f"in{i}", shape)
        target = self.r(1, self.max_nodes)
        gens = GENERATORS
        weights = np.array([w for _, w in gens], float)
        tries = 0
        while len(self.g.nodes) - self._n_input_nodes < target and tries < 40 * target:
            tries += 1
            fn = gens[int(self.rng.choice(len(gens), p=weights / weights.sum()))][0]
            snap = self._snapshot()
            try:
                fn(self)
            except (Reject, EdgecError):
                self._restore(snap)
        return self._finish()

    _n_input_nodes = 0

    def _input(self, name, shape):
        """An int8 graph input, or a float one followed by QUANTIZE."""
        scale = float(np.float32(math.exp(self.rng.uniform(math.log(0.004), math.log(0.5)))))
        zp = self.r(-128, 127) if self.rng.random() < 0.7 else 0
        q = QuantParams([scale], [zp])
        lo, hi = scale * (-128 - zp), scale * (127 - zp)
        if self.rng.random() < 0.25:
            self.g.add_tensor(name, shape, "float32")
            self.gf.add_tensor(name, shape, "float32")
            self.g.inputs.append(name)
            self.gf.inputs.append(name)
            # a bit beyond the representable range: saturation
            span = (hi - lo) * 0.1
            self.float_inputs[name] = (lo - span, hi + span)
            self.env[name] = self.rng.uniform(lo - span, hi + span, shape)
            out = self.name("q")
            self.g.add_node("Quantize", [name], [out], {"dtype": "int8", "rounding": "away", "quant": q})
            self.g.tensors[out].quant = q
            self.gf.add_node("Reshape", [name], [out], {"shape": list(shape)})
            self.env[out] = self.env[name]
            self._n_input_nodes += 1
            self.used.add(name)
            return
        self.g.add_tensor(name, shape, "int8", quant=q)
        self.gf.add_tensor(name, shape, "float32")
        self.g.inputs.append(name)
        self.gf.inputs.append(name)
        self.env[name] = self.real(self.rng.integers(-128, 128, shape), q)

    def _snapshot(self):
        return (len(self.g.nodes), dict(self.g.tensors), len(self.gf.nodes), dict(self.gf.tensors),
                dict(self.env), set(self.used), self.k)

    def _restore(self, s):
        self.g.nodes = self.g.nodes[:s[0]]
        self.g.tensors = s[1]
        self.gf.nodes = self.gf.nodes[:s[2]]
        self.gf.tensors = s[3]
        self.env, self.used = s[4], s[5]

    def _finish(self) -> Graph:
        g = self.g
        computed = [n.outputs[0] for n in g.nodes]
        outs = [o for o in computed if o not in self.used]
        outs += [o for o in computed if o in self.used and self.rng.random() < 0.2]
        if not outs:
            raise Reject
        final = []
        for o in outs:
            if g.tensors[o].dtype == "int8" and self.rng.random() < 0.2:
                y = self.name("dq")
                g.add_node("Dequantize", [o], [y], {})
                final.append(y)
            else:
                final.append(o)
        g.outputs = final
        g.remove_dead()
        g.validate()
        return g


# --- generators ------------------------------------------------------------------

def _act(gen):
    return ACTS[gen.r(0, len(ACTS) - 1)]


def _weight_quant(gen, O):
    if gen.rng.random() < 0.5:
        s = np.exp(gen.rng.uniform(math.log(1e-3), math.log(5e-2), O)).astype(np.float32)
        return QuantParams(s, np.zeros(O, np.int64), 0)
    return QuantParams([float(np.float32(math.exp(gen.rng.uniform(math.log(1e-3), math.log(5e-2)))))], [0])


def _weights(gen, shape):
    w = gen.rng.integers(-127, 128, shape).astype(np.int8)
    if gen.rng.random() < 0.1:  # large accumulators
        w.reshape(-1)[: max(1, w.size // 2)] = gen.rng.choice([-127, 127])
    return w


def _bias(gen, x, wq: QuantParams, O):
    if gen.rng.random() < 0.25:
        return None
    xs = float(gen.g.tensors[x].quant.scale[0])
    bscale = np.asarray(wq.scale, np.float64) * xs
    if bscale.size == 1:
        bscale = np.full(O, bscale[0])
    real = gen.rng.uniform(-1, 1, O) * float(np.abs(gen.env[x]).max() + 0.1)
    b = np.clip(np.round(real / bscale), -(1 << 20), 1 << 20).astype(np.int32)
    return gen.const("b", b, None, real=b * bscale)


def gen_conv(gen: Int8Gen):
    x = gen.pick(lambda t: t.rank == 4 and t.shape[3] <= 16)
    N, H, W, C = x.shape
    kind = gen.rng.choice(["conv", "conv", "depthwise", "grouped"])
    if kind == "depthwise":
        group, mult = C, gen.r(1, 3)
        O, Cg = C * mult, 1
    elif kind == "grouped":
        divs = [d for d in range(2, C + 1) if C % d == 0 and d < C]
        if not divs:
            raise Reject
        group = divs[gen.r(0, len(divs) - 1)]
        O, Cg = group * gen.r(1, 2), C // group
    else:
        group, O, Cg = 1, gen.r(1, 8), C
    KH, KW = gen.r(1, min(4, H + 2)), gen.r(1, min(4, W + 2))
    sh, sw = (gen.r(1, 3), gen.r(1, 3)) if gen.rng.random() < 0.4 else (1, 1)
    dh, dw = (gen.r(1, 2), gen.r(1, 2)) if gen.rng.random() < 0.2 else (1, 1)
    how = gen.rng.choice(["same", "same", "valid", "explicit"])
    if how == "explicit":
        pads = [gen.r(0, KH - 1), gen.r(0, KW - 1), gen.r(0, KH - 1), gen.r(0, KW - 1)]
    else:
        pads = tfl_pads(H, W, KH, KW, sh, sw, dh, dw, 0 if how == "same" else 1)
    wq = _weight_quant(gen, O)
    w = gen.const("w", _weights(gen, (O, KH, KW, Cg)), wq)
    ins = [x.name, w]
    b = _bias(gen, x.name, wq, O)
    if b:
        ins.append(b)
    gen.node("Conv", ins, dict(layout="NHWC", strides=[sh, sw], dilations=[dh, dw], pads=pads,
                               group=group, act=_act(gen)))


def gen_fc(gen: Int8Gen):
    x = gen.pick(lambda t: t.size <= 1024)
    keep = gen.rng.random() < 0.3
    K = x.shape[-1] if keep or gen.rng.random() < 0.6 else None
    if K is None:
        divs = [d for d in range(1, x.size + 1) if x.size % d == 0 and d <= 256]
        K = divs[gen.r(0, len(divs) - 1)]
    N = gen.r(1, 16)
    wq = _weight_quant(gen, N)
    w = gen.const("w", _weights(gen, (N, K)), wq)
    ins = [x.name, w]
    b = _bias(gen, x.name, wq, N)
    if b:
        ins.append(b)
    gen.node("FullyConnected", ins, {"keep_dims": keep, "act": _act(gen)})


def gen_binary(gen: Int8Gen):
    op = ["Add", "Sub", "Mul"][gen.r(0, 2)]
    x = gen.pick()
    if gen.rng.random() < 0.5:
        cands = []
        for t in gen.values(lambda t: t is not x):
            try:
                s = np.broadcast_shapes(x.shape, t.shape)
            except ValueError:
                continue
            if len(s) <= 4 and int(np.prod(s)) <= MAX_ELEMS:
                cands.append(t)
        other = cands[gen.r(0, len(cands) - 1)].name if cands else None
    else:
        other = None
    if other is None:
        if gen.rng.random() < 0.1:
            other = x.name
        else:
            shape = tuple(d if gen.rng.random() < 0.6 else 1 for d in x.shape)
            if shape and gen.rng.random() < 0.3:
                shape = shape[gen.r(0, len(shape)):]
            lo, hi = float(gen.env[x.name].min()), float(gen.env[x.name].max())
            q = gen.rand_quant(lo, hi)
            data = gen.rng.integers(-128, 128, shape).astype(np.int8)
            other = gen.const("k", data, q)
    ins = [x.name, other]
    if gen.rng.random() < 0.3:
        ins = ins[::-1]
    out = gen.node(op, ins, {"act": _act(gen)})
    if op in ("Add", "Sub"):
        # TFLite requires the output rescale of ADD/SUB (2 max(s1, s2) / (2^20 s_out)) to be
        # below one; TFLite Micro aborts the process otherwise
        t = gen.g.tensors[out]
        s_in = max(float(gen.g.tensors[i].quant.scale[0]) for i in ins)
        if float(t.quant.scale[0]) <= 2 * s_in / (1 << 20) * 1.01:
            t.quant = QuantParams([float(np.float32(2 * s_in / (1 << 20) * 2))], t.quant.zero_point)


def gen_pool(gen: Int8Gen):
    x = gen.pick(lambda t: t.rank == 4)
    N, H, W, C = x.shape
    kh, kw = gen.r(1, min(4, H)), gen.r(1, min(4, W))
    sh, sw = gen.r(1, 3), gen.r(1, 3)
    same = gen.rng.random() < 0.5
    pads = tfl_pads(H, W, kh, kw, sh, sw, 1, 1, 0 if same else 1)
    op = "MaxPool" if gen.rng.random() < 0.5 else "AveragePool"
    gen.node(op, [x.name], dict(layout="NHWC", kernel=[kh, kw], strides=[sh, sw], pads=pads,
                                ceil_mode=0, count_include_pad=0, act=_act(gen)), quant=x.quant)


def gen_softmax(gen: Int8Gen):
    # rows of 512+ can sum exps past what TFLite Micro's reference handles (it aborts);
    # edgec's C is checked on those separately (tests/test_hygiene.py)
    x = gen.pick(lambda t: t.rank >= 1 and t.shape[-1] < 512)
    beta = float(np.float32(gen.rng.choice([1.0, 1.0, gen.rng.uniform(0.1, 3.0)])))
    gen.node("Softmax", [x.name], {"axis": -1, "beta": beta}, quant=QuantParams([1 / 256], [-128]))


def gen_reshape(gen: Int8Gen):
    x = gen.pick()
    rank = gen.r(1, 4)
    dims, rest = [], x.size
    for _ in range(rank - 1):
        divs = [d for d in range(1, rest + 1) if rest % d == 0]
        d = divs[gen.r(0, len(divs) - 1)]
        dims.append(d)
        rest //= d
    dims.append(rest)
    gen.rng.shuffle(dims)
    gen.node("Reshape", [x.name], {"shape": [int(d) for d in dims]}, quant=x.quant)


def gen_transpose(gen: Int8Gen):
    x = gen.pick(lambda t: t.rank >= 2)
    perm = [int(p) for p in gen.rng.permutation(x.rank)]
    gen.node("Transpose", [x.name], {"perm": perm}, quant=x.quant)


def gen_pad(gen: Int8Gen):
    x = gen.pick(lambda t: t.rank >= 1)
    p = [gen.r(0, 2) if gen.rng.random() < 0.5 else 0 for _ in range(2 * x.rank)]
    if not any(p):
        p[gen.r(0, len(p) - 1)] = 1
    value = None
    if gen.rng.random() < 0.4:
        value = gen.r(-128, 127)
    gen.node("Pad", [x.name], {"pads": p, "mode": "constant", "value": value}, quant=x.quant)


def gen_concat(gen: Int8Gen):
    x = gen.pick(lambda t: t.rank >= 1)
    axis = gen.r(0, x.rank - 1)
    ins = [x.name]
    for _ in range(gen.r(1, 2)):
        cands = gen.values(lambda t: t.rank == x.rank and all(
            a == b for i, (a, b) in enumerate(zip(t.shape, x.shape)) if i != axis))
        if cands and gen.rng.random() < 0.7:
            t = cands[gen.r(0, len(cands) - 1)]
            name = t.name
            if t.quant != x.quant:  # TFLite Micro: same quantization everywhere
                name = gen.node("Quantize", [t.name], {"dtype": "int8", "quant": x.quant},
                                quant=x.quant)
            ins.append(name)
        else:
            s = list(x.shape)
            s[axis] = gen.r(1, 3)
            ins.append(gen.const("k", gen.rng.integers(-128, 128, s).astype(np.int8), x.quant))
    ax = axis - x.rank if gen.rng.random() < 0.3 else axis
    gen.node("Concat", ins, {"axis": ax}, quant=x.quant)


def gen_mean(gen: Int8Gen):
    """MEAN / SUM over random axes, often a 4-D mean over H and W with keep_dims
    (global average pooling) or with the input's own quantization: the cases older
    TFLite Micro releases computed differently."""
    x = gen.pick(lambda t: t.rank >= 1)
    if x.rank == 4 and gen.rng.random() < 0.4:
        axes, keep = [1, 2], 1
    else:
        k = gen.r(1, x.rank)
        axes = sorted(int(a) for a in gen.rng.choice(x.rank, size=k, replace=False))
        keep = gen.r(0, 1) if k < x.rank else 1  # no rank-0 results: the other generators want a shape
    total = gen.rng.random() < 0.2
    quant = x.quant if (not total and gen.rng.random() < 0.3) else None
    gen.node("QMean", [x.name], {"axes": axes, "keepdims": keep, "sum": int(total)}, quant=quant)


def gen_leaky_relu(gen: Int8Gen):
    x = gen.pick()
    alpha = float(np.float32(gen.rng.choice([0.1, 0.2, 0.3, gen.rng.uniform(0.01, 0.9)])))
    gen.node("QLeakyRelu", [x.name], {"alpha": alpha})


def gen_requant(gen: Int8Gen):
    x = gen.pick()
    q = gen.rand_quant(float(gen.env[x.name].min()), float(gen.env[x.name].max()))
    gen.node("Quantize", [x.name], {"dtype": "int8", "quant": q}, quant=q)


GENERATORS = [
    (gen_conv, 10), (gen_fc, 6), (gen_binary, 8), (gen_pool, 5), (gen_softmax, 2),
    (gen_reshape, 4), (gen_transpose, 3), (gen_pad, 3), (gen_concat, 3), (gen_requant, 2),
    (gen_mean, 3), (gen_leaky_relu, 2),
]


def generate(rng: np.random.Generator, max_nodes: int = 10):
    """A random int8 graph (IR) and the ranges of its float inputs ({name: (lo, hi)})."""
    while True:
        gen = Int8Gen(rng, max_nodes)
        try:
            g = gen.build()
        except Reject:
            continue
        return g, gen.float_inputs
