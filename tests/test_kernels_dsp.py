"""The int8 kernels for the Arm DSP extension (templates/runtime/dsp_s8.c,
edgec/ops/dsp.py) bit-exact on random shapes and quantization parameters.

Each hypothesis example is a batch of random layers (convolutions of every
geometry, 1x1, depthwise 3x3, fully connected, global average pooling, ADD
and SUB, a convolution with a fused ADD) built as one graph of independent
branches, so one firmware and one QEMU run check them all: the DSP kernels
(inline assembly, cortex-m4), the same in their shared run-time form
(``--optimize size``) and in portable C (host), each against edgec's
interpreter (TFLite Micro's arithmetic) and against the plain kernels."""
import re
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import have

from edgec.ir import qmath
from edgec.ir.graph import Graph, QuantParams
from edgec.ops import binary, dsp

ACTS = [None, (0.0, float("inf")), (0.0, 6.0)]


# ---- the requantization identity (pure Python) ---------------------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(1e-9, 0.49), st.integers(-128, 127)), min_size=1, max_size=4),
       st.lists(st.integers(-(1 << 31), (1 << 31) - 1), min_size=1, max_size=50))
def test_requant_table_is_tflite_double_rounding(mults, accs):
    m, s = zip(*[qmath.quantize_multiplier(x) for x, _ in mults])
    zp = mults[0][1]
    rt = dsp.requant_table(m, s, zp)
    if rt is None:
        assert any(sh > -2 or M <= (1 << 30) for M, sh in zip(m, s) if M)
        return
    table, zp_left = rt
    acc = np.array(accs, np.int64)
    for i in range(len(m)):
        want = qmath.mul_by_quantized_multiplier(acc, m[i], s[i]) + zp
        got = dsp.requant_reference(acc, table[i], zp_left)
        if zp_left == 0 and dsp.requant_shift(table[i][1]) > 22:
            continue  # zero point not folded then
        np.testing.assert_array_equal(got, want)


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-4, 1.0), st.floats(1e-4, 1.0), st.floats(1e-4, 1.0), st.integers(-128, 127),
       st.integers(-128, 127), st.sampled_from(["Add", "Sub"]))
def test_add_tables_as_line_plus_int8_correction(sa, sb, so, za, zb, op):
    """ADD/SUB tables (TFLite Micro's rescaling of each input) stored as a line plus an
    int8 correction reproduce every entry, with every step inside int32."""
    from edgec.ir.graph import Graph
    g = Graph()
    g.add_tensor("a", [1, 4], "int8", quant=_q(sa, za))
    g.add_tensor("b", [1, 4], "int8", quant=_q(sb, zb))
    g.add_tensor("y", [1, 4], "int8", quant=_q(so, 0))
    n = g.add_node(op, ["a", "b"], ["y"], {})
    for t in binary.add_tables(g, n)[:2]:
        form = dsp.lut_form(t)
        assert form is not None
        a, b, sh, d = form
        i = np.arange(256, dtype=np.int64)
        line = a + ((i * b) >> sh)
        assert np.abs(i * b).max() < 2**31 and np.abs(line).max() < 2**31
        assert d.min() >= -128 and d.max() <= 127
        np.testing.assert_array_equal(line + d, np.asarray(t, np.int64))


def test_add_full_table_fallback_bit_exact_on_host(tmp_path, monkeypatch):
    """The full 256-entry int32 table (taken when no line fits) in C."""
    if not have("gcc"):
        pytest.skip("no host gcc")
    monkeypatch.setattr(dsp, "lut_form", lambda t: None)
    g = build([("add", dict(shape=(1, 3, 4, 5), op="Add")), ("add", dict(shape=(1, 2, 2, 3), op="Sub")),
               ("conv_add", dict(H=5, W=5, C=4, O=6, KH=3, KW=3, sh=1, sw=1, dh=1, dw=1,
                                 pads=[1, 1, 1, 1], group=1, act=None))], 7)
    src = None
    for kernels in ("dsp", "mve"):
        check(g, "host", tmp_path / kernels, 7, kernels=kernels)
        src = (tmp_path / kernels / "bundle" / "k.c").read_text()
        assert re.search(r"static const k_lut_t k_l\d+_lut_a = \{k_l\d+_lut_a_tab,", src), src


# ---- random layers ---------------------------------------------------------------

def _q(scale, zp, axis=None):
    return QuantParams(np.asarray(scale, np.float32), np.asarray(zp), axis)


class Builder:
    def __init__(self, seed):
        self.g = Graph("kernels")
        self.rng = np.random.default_rng(seed)
        self.i = 0

    def input(self, shape):
        r = self.rng
        name = f"x{self.i}_{len(self.g.inputs)}"
        self.g.add_tensor(name, shape, "int8", quant=_q(r.uniform(0.004, 0.1), r.integers(-128, 128)))
        self.g.inputs.append(name)
        return name

    def weights(self, shape, per_channel=True):
        r = self.rng
        w = r.integers(-127, 128, shape).astype(np.int8)
        if r.random() < 0.15:
            w[0] = 0
        O = shape[0]
        sc = r.uniform(0.001, 0.05, O) if per_channel else np.full(1, r.uniform(0.001, 0.05))
        return self.g.add_const(w, f"w{self.i}", quant=_q(sc, np.zeros(sc.size, np.int64),
                                                          0 if per_channel else None)), sc

    def output(self, name, xs, ws, K, act):
        r = self.rng
        ys = float(xs * float(np.mean(ws)) * np.sqrt(K) * 40 * r.uniform(0.2, 3.0))
        if r.random() < 0.1:
            ys = float(xs * float(np.max(ws)) * r.uniform(0.5, 1.5))  # multiplier near 1: plain path
        t = self.g.tensors[name]
        t.quant = _q(ys, r.integers(-128, 128))
        return name

    def finish(self, name):
        self.g.outputs.append(name)
        self.i += 1

    def conv(self, H, W, C, O, KH, KW, sh, sw, dh, dw, pads, group=1, act=None, out=True):
        x = self.input((1, H, W, C))
        w, ws = self.weights((O, KH, KW, C // group), per_channel=self.rng.random() < 0.8)
        b = self.g.add_const(self.rng.integers(-40000, 40000, O).astype(np.int32), f"b{self.i}")
        y = f"y{self.i}"
        self.g.add_node("Conv", [x, w, b], [y], dict(layout="NHWC", strides=[sh, sw],
                        dilations=[dh, dw], pads=list(pads), group=group, act=act))
        xs = float(self.g.tensors[x].quant.scale[0])
        self.output(y, xs, ws, KH * KW * C // group, act)
        if out:
            self.finish(y)
        return y

    def fc(self, M, K, N, act):
        x = self.input((M, K))
        w, ws = self.weights((N, K), per_channel=self.rng.random() < 0.3)
        b = self.g.add_const(self.rng.integers(-40000, 40000, N).astype(np.int32), f"b{self.i}")
        y = f"y{self.i}"
        self.g.add_node("FullyConnected", [x, w, b], [y], {"keep_dims": False, "act": act})
        self.output(y, float(self.g.tensors[x].quant.scale[0]), ws, K, act)
        self.finish(y)

    def avgpool(self, H, W, C):
        x = self.input((1, H, W, C))
        y = f"y{self.i}"
        self.g.add_node("AveragePool", [x], [y], dict(layout="NHWC", kernel=[H, W], strides=[H, W],
                        pads=[0, 0, 0, 0], ceil_mode=0, count_include_pad=0, act=None))
        self.finish(y)

    def add(self, shape, op="Add", a=None):
        r = self.rng
        a = a or self.input(shape)
        b = self.input(shape)
        y = f"y{self.i}_sum"
        self.g.add_node(op, [a, b] if r.random() < 0.5 else [b, a], [y],
                        {"act": ACTS[r.integers(0, 2)]})
        self.g.tensors[y].quant = _q(r.uniform(0.01, 0.2), r.integers(-128, 128))
        self.finish(y)


@st.composite
def conv_spec(draw):
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    H = draw(st.integers(max(1, (KH - 1) * dh + 1 - pads[0] - pads[2]), 9))
    W = draw(st.integers(max(1, (KW - 1) * dw + 1 - pads[1] - pads[3]), 9))
    C = draw(st.sampled_from([1, 2, 3, 4, 5, 8, 12, 16]))
    O = draw(st.integers(1, 11))
    return ("conv", dict(H=H, W=W, C=C, O=O, KH=KH, KW=KW, sh=sh, sw=sw, dh=dh, dw=dw, pads=pads,
                         act=draw(st.sampled_from(ACTS))))


@st.composite
def pointwise_spec(draw):
    s = draw(st.integers(1, 2))
    return ("conv", dict(H=draw(st.integers(1, 7)), W=draw(st.integers(1, 7)),
                         C=draw(st.sampled_from([4, 8, 12, 16, 32])), O=draw(st.integers(1, 12)),
                         KH=1, KW=1, sh=s, sw=s, dh=1, dw=1, pads=[0, 0, 0, 0],
                         act=draw(st.sampled_from(ACTS))))


@st.composite
def dw_spec(draw):
    C = draw(st.integers(1, 10))
    if draw(st.booleans()):  # the 3x3 stride 1/2 kernel of DSP targets
        KH = KW = 3
        sh = sw = draw(st.integers(1, 2))
        dh = dw = 1
        pads = [draw(st.integers(0, 1)) for _ in range(4)]
    else:
        KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        pads = [draw(st.integers(0, 2)) for _ in range(4)]
    H = draw(st.integers(max(1, (KH - 1) * dh + 1 - pads[0] - pads[2]), 9))
    W = draw(st.integers(max(1, (KW - 1) * dw + 1 - pads[1] - pads[3]), 9))
    return ("conv", dict(H=H, W=W, C=C, O=C, KH=KH, KW=KW, sh=sh, sw=sw, dh=dh, dw=dw, pads=pads,
                         group=C, act=draw(st.sampled_from(ACTS))))


@st.composite
def fc_spec(draw):
    K = draw(st.one_of(st.sampled_from([4, 8, 16, 64, 100]), st.integers(1, 20)))
    return ("fc", dict(M=draw(st.integers(1, 3)), K=K, N=draw(st.integers(1, 10)),
                       act=draw(st.sampled_from(ACTS))))


@st.composite
def pool_spec(draw):
    return ("avgpool", dict(H=draw(st.integers(1, 8)), W=draw(st.integers(1, 8)),
                            C=draw(st.integers(1, 12))))


@st.composite
def add_spec(draw):
    shape = (1, draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 9)))
    return ("add", dict(shape=shape, op=draw(st.sampled_from(["Add", "Sub"]))))


@st.composite
def conv_add_spec(draw):
    _, c = draw(st.one_of(pointwise_spec(), conv_spec()))
    c["group"] = 1
    return ("conv_add", c)


LAYER = st.one_of(conv_spec(), pointwise_spec(), dw_spec(), fc_spec(), pool_spec(), add_spec(),
                  conv_add_spec())


def build(specs, seed):
    b = Builder(seed)
    for kind, p in specs:
        if kind == "conv":
            b.conv(p["H"], p["W"], p["C"], p["O"], p["KH"], p["KW"], p["sh"], p["sw"], p["dh"],
                   p["dw"], p["pads"], p.get("group", 1), p["act"])
        elif kind == "conv_add":
            y = b.conv(p["H"], p["W"], p["C"], p["O"], p["KH"], p["KW"], p["sh"], p["sw"], p["dh"],
                       p["dw"], p["pads"], 1, p["act"], out=False)
            b.add(b.g.tensors[y].shape, "Add", a=y)
        elif kind == "fc":
            b.fc(p["M"], p["K"], p["N"], p["act"])
        elif kind == "avgpool":
            b.avgpool(p["H"], p["W"], p["C"])
        else:
            b.add(p["shape"], p["op"])
    b.g.validate()
    return b.g


def run(g, target, samples, tmp, **extra):
    from edgec.pipeline import Options
    from edgec.commands.run import run_on_target
    opts = Options(target=target, name="k", extra=extra)
    if target == "host":
        from edgec.pipeline import compile_full
        from edgec.target.emulator import HostProgram
        bundle, _ = compile_full(g, opts)
        bdir = bundle.write(tmp / "bundle")
        outs, _ = HostProgram(bdir, bundle.report, tmp / "host").run(samples)
        return outs
    outs, *_ = run_on_target(g, opts, samples, tmp, False)
    return outs


def check(g, target, tmp, seed, **extra):
    from edgec.ops import interp
    from edgec.data import random_samples
    samples = random_samples(g, 2, seed=seed)
    want = [[interp.run(g, s)[o] for o in g.outputs] for s in samples]
    got = run(g, target, samples, tmp, **extra)
    for si, (w, o) in enumerate(zip(want, got)):
        for name, a, b in zip(g.outputs, w, o):
            a = np.asarray(a).reshape(-1)
            b = np.asarray(b).reshape(-1)
            assert np.array_equal(a, b), (f"{target} {extra} sample {si} output {name}: "
                                          f"{int((a != b).sum())} of {a.size} differ")
    return got


BATCH = st.lists(LAYER, min_size=6, max_size=12)
SLOW = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


def need_arm():
    if not (have("arm-none-eabi-gcc") and have("qemu-system-arm")):
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed")


@pytest.mark.qemu
@SLOW
@given(specs=BATCH, seed=st.integers(0, 2**31))
def test_dsp_kernels_bit_exact_on_cortex_m4(specs, seed, tmp_path_factory):
    """Inline-assembly kernels, specialized per layer, against TFLite Micro's
    arithmetic and the plain kernels (same firmware harness)."""
    need_arm()
    g = build(specs, seed)
    tmp = tmp_path_factory.mktemp("dsp")
    fast = check(g, "cortex-m4", tmp / "speed", seed)
    plain = check(g, "cortex-m4", tmp / "plain", seed, kernels="plain")
    for a, b in zip(fast, plain):
        for x, y in zip(a, b):
            assert np.array_equal(x, y)


@pytest.mark.qemu
@SLOW
@given(specs=BATCH, seed=st.integers(0, 2**31))
def test_dsp_kernels_shared_size_form_bit_exact(specs, seed, tmp_path_factory):
    """--optimize size: one copy of each kernel, parameters at run time."""
    need_arm()
    g = build(specs, seed)
    check(g, "cortex-m4", tmp_path_factory.mktemp("size"), seed, optimize="size")


@pytest.mark.qemu
@SLOW
@given(specs=BATCH, seed=st.integers(0, 2**31))
def test_helium_kernels_bit_exact_on_cortex_m55(specs, seed, tmp_path_factory):
    """MVE kernels (QEMU mps3-an547), beside the DSP ones they fall back to."""
    need_arm()
    g = build(specs, seed)
    check(g, "cortex-m55", tmp_path_factory.mktemp("m55"), seed)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(specs=BATCH, seed=st.integers(0, 2**31), kernels=st.sampled_from(["dsp", "mve"]))
def test_kernels_portable_c_bit_exact_on_host(specs, seed, kernels, tmp_path_factory):
    """The same kernels without the DSP / MVE instructions (another compiler, -O0)."""
    if not have("gcc"):
        pytest.skip("no host gcc")
    g = build(specs, seed)
    check(g, "host", tmp_path_factory.mktemp("host"), seed, kernels=kernels)


def test_fused_conv_add_with_zero_weights_keeps_its_kernel_on_host(tmp_path):
    """A Conv whose weights have a zero channel, with an ADD fused into it, under
    --optimize size (no DSP exemption from sparse storage): the sparse kernel does
    not compute the fused sum, so the layer keeps its DSP kernel."""
    if not have("gcc"):
        pytest.skip("no host gcc")
    g = build([("conv_add", dict(H=6, W=6, C=16, O=2, KH=3, KW=3, sh=1, sw=1, dh=1, dw=1,
                                 pads=[1, 1, 1, 1], group=1, act=None))], 3)
    conv = next(n for n in g.nodes if n.op == "Conv")
    w = g.tensors[conv.inputs[1]]
    data = w.data.copy()
    data[0] = 0
    data.setflags(write=False)
    w.data = data
    check(g, "host", tmp_path, 1, kernels="dsp", optimize="size")
    assert "k_dsp_conv(x0" in (tmp_path / "bundle" / "k.c").read_text()
