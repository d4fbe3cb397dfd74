"""Sparse weight storage for the native backend (adaptive sparsity).

For every Conv and FullyConnected layer whose constant weights contain zeros
(pruned with ``--prune``, or sparse as shipped), the backend prices the weights
in each storage format and keeps the smallest:

* ``dense``: the weights as they are (``rows x R`` values);
* ``bitmap``: one bit per weight saying "non-zero" (rows back to back,
  ``ceil(rows * R / 32)`` words) and the non-zero values in order: good from
  about 15% zeros (int8) up to about 85%;
* ``csr8``: per row the number of non-zeros, then for each non-zero the distance
  to the previous one in one byte (gaps over 255 take a filler entry with value
  zero) and its value: good for very sparse rows.

A row is an output channel: ``R = K`` for FullyConnected, ``KH * KW * C/group``
for Conv (the OHWI order, so ``(ky, kx, channel)`` is decoded on the fly with
running counters).  The kernels walk only the non-zeros; everything else (int32
accumulation and requantization of int8 layers, the float epilogue) is the dense
kernel's, in the same order, so a sparse layer is bit-exact with the dense graph
(the reference of a pruned model).  A "zero" is the weights' zero point.

``options["sparse"]``: ``auto`` (default: sparse when it saves at least
``MIN_SAVING`` of the layer's weight bytes and 64 bytes, except, in a model
edgec did not prune, a layer with a DSP / Helium kernel under ``--optimize
speed``, which keeps its dense SIMD kernel), ``off``, or ``always`` (any layer
with a zero weight; for tests).
"""
from __future__ import annotations

import numpy as np

from ..ir.errors import EdgecError
from ..ops import bnn, conv, dsp, gemm
from ..ops._requant import c_multipliers
from ..ops._util import act_range_float, act_range_quant, quant_of

MODES = ("auto", "off", "always")
MIN_SAVING = 0.05
MIN_SAVING_BYTES = 64


def _rows(k):
    """(weights [rows, R], zero value, itemsize, kind) of a sparse-able node, or None."""
    g, n = k.g, k.node
    if n.op not in ("Conv", "FullyConnected") or len(n.inputs) < 2:
        return None
    w = g.tensors[n.inputs[1]]
    x = g.tensors[n.inputs[0]]
    if not w.is_const or w.dtype not in ("int8", "float32") or x.dtype not in ("int8", "float32"):
        return None
    if n.op == "Conv":
        data = conv.weights_ohwi(g, n)
    else:
        data = w.data
    zero = 0
    if w.dtype == "int8":
        if w.quant is None:
            return None
        zps = np.unique(w.quant.zero_point)
        if zps.size != 1:
            return None
        zero = int(zps[0])
    return data.reshape(data.shape[0], -1), zero, (1 if w.dtype == "int8" else 4), w.dtype


def encode(w2d: np.ndarray, zero, itemsize: int) -> dict:
    """Every format's arrays and byte counts for weights [rows, R]."""
    rows, R = w2d.shape
    nz = w2d != zero
    nnz = int(nz.sum())
    vals = w2d[nz]
    out = {"dense": {"bytes": rows * R * itemsize}}
    # one bit per weight, rows back to back: bit j of word i is weight 32 i + j of the flat [rows * R]
    masks = bnn.pack(nz.reshape(-1), -1).view(np.uint32)
    out["bitmap"] = {"bytes": masks.size * 4 + nnz * itemsize, "mask": masks.reshape(-1),
                     "values": vals}
    deltas, cvals, counts = [], [], []
    for r in range(rows):
        pos = np.flatnonzero(nz[r])
        prev, c = 0, 0
        for p in pos.tolist():
            d = p - prev
            while d > 255:                                   # filler: a zero weight 255 further
                deltas.append(255)
                cvals.append(zero)
                d -= 255
                c += 1
            deltas.append(d)
            cvals.append(w2d[r, p])
            prev = p
            c += 1
        counts.append(c)
    counts = np.array(counts, np.int64)
    cdt = "uint8" if counts.max(initial=0) <= 255 else ("uint16" if counts.max() <= 65535 else "uint32")
    csz = {"uint8": 1, "uint16": 2, "uint32": 4}[cdt]
    out["csr8"] = {"bytes": rows * csz + len(deltas) * (1 + itemsize),
                   "deltas": np.array(deltas, np.uint8), "values": np.array(cvals, w2d.dtype),
                   "counts": counts, "counts_dtype": cdt}
    out["nonzeros"] = nnz
    out["weights"] = rows * R
    return out


def choose(enc: dict, mode: str) -> str:
    dense = enc["dense"]["bytes"]
    best = min(("bitmap", "csr8"), key=lambda f: enc[f]["bytes"])
    if mode == "off" or enc["nonzeros"] == enc["weights"]:
        return "dense"
    if mode == "always":
        return best
    saving = dense - enc[best]["bytes"]
    return best if saving >= max(MIN_SAVING_BYTES, MIN_SAVING * dense) else "dense"


def emit(k) -> str | None:
    """The sparse kernel of node ``k.node`` when a sparse format is chosen (else
    None: the op's dense kernel); records the choice in ``k.report``."""
    mode = str(k.options.get("sparse", "auto"))
    if mode not in MODES:
        raise EdgecError(f"unknown --sparse {mode!r} (one of: {', '.join(MODES)})")
    r = _rows(k)
    if r is None:
        return None
    w2d, zero, itemsize, wdt = r
    if not np.any(w2d == zero):
        return None
    enc = encode(w2d, zero, itemsize)
    fmt = choose(enc, mode)
    if k.node.attrs.get("fused_add"):
        fmt = "dense"  # an ADD fused into the Conv: only its DSP / Helium kernel computes the sum
    simd = False
    pruned = any(str(t).startswith("prune") for t in k.g.meta.transforms)
    if fmt != "dense" and mode == "auto" and k.optimize == "speed" and not pruned:
        if _simd_kernel(k):  # zeros as shipped, --optimize speed on a DSP / Helium core
            fmt, simd = "dense", True
    k.report["weights_format"] = {
        "format": fmt, **({"dense_for_simd_kernel": True} if simd else {}), "weights": enc["weights"], "nonzeros": enc["nonzeros"],
        "sparsity": round(1.0 - enc["nonzeros"] / max(enc["weights"], 1), 4),
        "dense_bytes": enc["dense"]["bytes"],
        "bitmap_bytes": enc["bitmap"]["bytes"], "csr8_bytes": enc["csr8"]["bytes"]}
    if fmt == "dense":
        return None
    return _render(k, fmt, enc, wdt)


def _simd_kernel(k) -> bool:
    """Whether this layer (int8 Conv or FullyConnected) gets a DSP or Helium kernel."""
    if not dsp.wanted(k.options):
        return False
    mve = dsp.mve_wanted(k.options)
    if k.node.op == "Conv":
        return conv.simd_kind(k.g, k.node, mve) is not None
    return gemm.simd_kernel(k.g, k.node, mve)


def _render(k, fmt, enc, wdt) -> str:
    g, n = k.g, k.node
    quantized = k.tin(0).dtype == "int8"
    cp = None
    if n.op == "Conv":
        cp = conv.prepare(g, n)
        v = cp.template_vars()
        geo = {key: v[key] for key in ("N", "H", "W", "O", "KH", "KW", "Cg", "OH", "OW", "Og",
                                       "group", "sh", "sw", "dh", "dw", "pt", "pl", "xs", "ys")}
        geo["fc"] = False
        O = cp.O
        act = n.attrs.get("act")
    else:
        M, N_, K = gemm.fc_dims(g, n)
        geo = dict(N=M, H=1, W=1, O=N_, KH=1, KW=1, Cg=K, OH=1, OW=1, Og=N_, group=1, sh=1, sw=1,
                   dh=1, dw=1, pt=0, pl=0, xs=dict(n=K, c=1, h=0, w=0), ys=dict(n=N_, c=1, h=0, w=0),
                   fc=True)
        act = n.attrs.get("act")
        O = N_
    R = geo["KH"] * geo["KW"] * geo["Cg"]
    ctx = dict(geo, fmt=fmt, R=R, RW=bnn.words(R), quantized=quantized, wscale=None,
               bias=k.x(2) if k.has_input(2) else None, weight_offset=0,
               vt="int8_t" if wdt == "int8" else "float", xt="int8_t" if quantized else "float")
    e = enc[fmt]
    ctx["values"] = k.const(e["values"], wdt, "wvals")
    if fmt == "bitmap":
        ctx["mask"] = k.const(e["mask"], "uint32", "wmask")
    else:
        ctx["deltas"] = k.const(e["deltas"], "uint8", "wdelta")
        ctx["counts"] = k.const(e["counts"], e["counts_dtype"], "wcount")
    if quantized and cp is not None:
        m, s = cp.m, cp.s
        ctx.update(input_offset=cp.input_offset, output_offset=cp.output_offset, act_lo=cp.act_lo,
                   act_hi=cp.act_hi)
    elif quantized:
        _, xzp = quant_of(g, n.inputs[0]).scalar()
        ysc, yzp = quant_of(g, n.outputs[0]).scalar()
        m, s = gemm.fc_requant(g, n)
        ctx["weight_offset"] = -int(quant_of(g, n.inputs[1]).zero_point[0])
        lo, hi = act_range_quant(act, ysc, yzp)
        ctx.update(input_offset=-xzp, output_offset=yzp, act_lo=lo, act_hi=hi)
    if quantized:
        ctx["per_channel"], ctx["mult"], ctx["shift"] = c_multipliers(k, m, s)
    else:
        ctx["act"] = act_range_float(act)
        if conv.is_weight_only(k.tin(1)):
            ctx["wscale"] = k.const(conv.weight_scales(k.tin(1), O), "float32", "wscale")
    k.need("sparse")
    return k.render("sparse_conv.c.j2", **ctx)
