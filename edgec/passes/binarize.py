"""Binarized layers: recognizing them (``lower_binary``) and making them (``binarize``).

``lower_binary`` (part of the default pipeline) finds the binarized layers of an
imported float graph: a Conv or FullyConnected whose input passes through
``Sign`` and whose weights are ``+/-alpha`` per output channel (``alpha`` the
optional per-channel scale).  Each becomes ``BitPack`` -> ``BinaryConv`` /
``BinaryFullyConnected`` with bit-packed weights (32 per word) and an XNOR /
popcount kernel, computing ``dot * alpha + bias`` exactly as the float layer
does from +/-1 values.  Per-channel Mul/Add/BatchNormalization and ReLU/Clip
after the layer fold into its multiplier, bias and clamp; when the result only
feeds the next layer's ``Sign``, the whole output transform folds into one
integer threshold per channel (``dot < T``) and the layer writes packed bits.

One difference from the float graph: ONNX ``Sign(0)`` is 0, a binary value is
+1 or -1, and edgec (like Larq) binarizes 0 as +1.  Inputs that are exactly 0
at a ``Sign`` give different results (the float graph multiplies by 0 there).

``binarize`` (``--binarize LAYERS``) turns chosen float layers into binary ones
without retraining, XNOR-Net style: weights ``w ~ alpha[c] * sign(w)`` with
``alpha[c] = mean |w[c]|``; in ``xnor`` mode the layer input too,
``x ~ center + beta * sign(x - center)`` (per-channel center and one ``beta =
mean |x - center|``, both measured on calibration data), the center's
contribution folded into the bias at compile time.  This loses accuracy: a
network has to be trained binarized (straight-through estimator) to work well
binarized.  ``weights`` mode keeps float inputs (binary-weight layers, the
kernel adds or subtracts each input).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir.errors import EdgecError
from ..ir.graph import Graph, Node
from ..ops import bnn

BINARY_OPS = ("BinaryConv", "BinaryFullyConnected")
MODES = ("xnor", "weights")


# --- helpers ------------------------------------------------------------------------

def _row_alpha(w: np.ndarray, rel: float = 1e-6) -> np.ndarray | None:
    """Per-row |w| when every row is +/-alpha with alpha > 0, else None."""
    a = np.abs(w.reshape(w.shape[0], -1).astype(np.float64))
    alpha = a.max(axis=1)
    if np.any(alpha <= 0) or np.any(np.abs(a - alpha[:, None]) > rel * alpha[:, None]):
        return None
    return alpha


def _ohwi(w: np.ndarray, layout: str) -> np.ndarray:
    return w if layout == "NHWC" else np.transpose(w, (0, 2, 3, 1))


def _channel_axis(g: Graph, n: Node) -> int:
    if n.op in ("Conv", "BinaryConv"):
        return 1 if n.attrs.get("layout", "NHWC") == "NCHW" else 3
    return g.tensors[n.outputs[0]].rank - 1


def _replace(g: Graph, old: Node, new_nodes: list[Node]) -> None:
    i = g.nodes.index(old)
    g.nodes[i:i + 1] = new_nodes


def _new_node(g: Graph, op: str, inputs, outputs, attrs, name) -> Node:
    """A node whose outputs may already exist (the replaced node's); the op's
    shape inference checks them."""
    from .. import ops
    n = Node(op, list(inputs), list(outputs), dict(attrs), name)
    ops.infer_node(g, n)
    return n


def _bitpack(g: Graph, x: str, axis: int, threshold, cache: dict, created: list) -> str:
    key = (x, axis, None if threshold is None else np.asarray(threshold, np.float32).tobytes())
    if key in cache:
        return cache[key]
    out = g.unique_name(x + "_bits")
    attrs: dict[str, Any] = {"axis": axis}
    if threshold is not None:
        attrs["threshold"] = [float(v) for v in np.asarray(threshold, np.float32).reshape(-1)]
    n = _new_node(g, "BitPack", [x], [out], attrs, f"bitpack_{x}")
    created.append(n)
    cache[key] = out
    return out


def _binary_layer(g: Graph, n: Node, x_in: str, w_neg: np.ndarray, mult: np.ndarray,
                  bias: np.ndarray | None, channels: int, extra: dict) -> Node:
    """The binary counterpart of Conv/FullyConnected ``n`` reading ``x_in`` (packed
    or float), with weights signs ``w_neg`` (True = -1; OHWI or [N, K])."""
    wp = g.add_const(bnn.pack(w_neg, -1), n.inputs[1] + "_bits")
    m = g.add_const(np.asarray(mult, np.float32).reshape(-1), n.inputs[1] + "_mult")
    O = w_neg.shape[0]
    b = g.add_const(np.zeros(O, np.float32) if bias is None else np.asarray(bias, np.float32).reshape(-1),
                    n.inputs[1] + "_bbias")
    attrs = dict(channels_in=channels, act=n.attrs.get("act"), out="float32", **extra)
    if n.op == "Conv":
        a = n.attrs
        attrs.update(layout=a["layout"], strides=list(a["strides"]), dilations=list(a["dilations"]),
                     pads=list(a["pads"]), pad_value=0, group=1)
        return _new_node(g, "BinaryConv", [x_in, wp, m, b], n.outputs, attrs, n.name)
    return _new_node(g, "BinaryFullyConnected", [x_in, wp, m, b], n.outputs, attrs, n.name)


def _fc_input_2d(g: Graph, n: Node, created: list) -> str:
    """FullyConnected without keep_dims on a rank > 2 input: its [M, K] view."""
    x = n.inputs[0]
    t = g.tensors[x]
    K = g.tensors[n.inputs[1]].shape[1]
    if n.attrs.get("keep_dims") or t.rank == 2:
        return x
    r = g.unique_name(x + "_2d")
    created.append(_new_node(g, "Reshape", [x], [r], {"shape": [t.size // K, K]}, f"reshape_{x}"))
    return r


def binarizable(g: Graph, n: Node) -> str | None:
    """Why Conv/FullyConnected ``n`` cannot become a binary layer (None: it can)."""
    if n.op not in ("Conv", "FullyConnected"):
        return f"{n.op} is not a Conv or FullyConnected layer"
    w = g.tensors[n.inputs[1]]
    x = g.tensors[n.inputs[0]]
    if not w.is_const or w.dtype != "float32" or x.dtype != "float32":
        return "not a float layer with constant weights"
    if n.input(2) and not g.tensors[n.inputs[2]].is_const:
        return "computed bias"
    if n.op == "Conv" and n.attrs["group"] != 1:
        return "grouped or depthwise convolution"
    return None


# --- lower_binary -----------------------------------------------------------------

def lower_binary(g: Graph) -> bool:
    """Sign -> Conv/FullyConnected with +/-alpha weights  =>  binary layers (in place)."""
    prod = g.producers()
    cons = g.consumers()
    cache: dict = {}
    lowered: list[Node] = []
    for s in [n for n in g.nodes if n.op == "Sign"]:
        x = s.inputs[0]
        if g.tensors[x].dtype != "float32":
            continue
        for c in list(cons.get(s.outputs[0], [])):
            target, via = c, None
            if c.op == "Reshape" and c.outputs[0] not in g.outputs:
                users = cons.get(c.outputs[0], [])
                fcs = [u for u in users if u.op == "FullyConnected" and u.inputs[0] == c.outputs[0]]
                if len(fcs) != 1:
                    continue
                target, via = fcs[0], c
            if target.op not in ("Conv", "FullyConnected") or target.inputs[0] != \
                    (via.outputs[0] if via else s.outputs[0]) or binarizable(g, target):
                continue
            w = g.tensors[target.inputs[1]].data
            alpha = _row_alpha(w)
            if alpha is None:
                continue
            created: list[Node] = []
            if target.op == "Conv":
                wo = _ohwi(w, target.attrs["layout"])
                src = x
                axis = 1 if target.attrs["layout"] == "NCHW" else 3
                channels = wo.shape[3]
            else:
                wo = w
                src = x
                if via is not None:
                    src = g.unique_name(x + "_r")
                    created.append(_new_node(g, "Reshape", [x], [src], dict(via.attrs), via.name))
                tmp = Node("FullyConnected", [src] + target.inputs[1:], target.outputs, target.attrs)
                src = _fc_input_2d(g, tmp, created)
                axis = -1
                channels = wo.shape[1]
            thr = None
            if via is None:
                src, thr = _shifted_source(g, src, axis, prod, cons)
            xb = _bitpack(g, src, axis, thr, cache, created)
            bias = g.tensors[target.inputs[2]].data if target.input(2) else None
            new = _binary_layer(g, target, xb, wo < 0, alpha, bias, channels, {})
            _replace(g, target, created + [new])
            lowered.append(new)
    if not lowered and not any(n.op in BINARY_OPS for n in g.nodes):
        return False
    g.remove_dead()
    g.topo_sort()
    folded = fold_after_binary(g)
    packed = fuse_packed_outputs(g)
    g.remove_dead()
    g.topo_sort()
    if not (lowered or folded or packed):
        return False
    names = ", ".join(n.name for n in lowered[:8]) + (" ..." if len(lowered) > 8 else "")
    what = (f"{len(lowered)} Sign -> Conv/FullyConnected layers with +/-alpha weights to "
            f"XNOR/popcount kernels ({names}); ") if lowered else ""
    g.meta.transforms = [*g.meta.transforms,
        f"lower_binary ({what}{folded} per-channel ops folded into binary layers, {packed} binary "
        "layers write packed bits" + ("; binary inputs treat 0 as +1" if lowered else "") + ")"]
    return True


def _shifted_source(g: Graph, x: str, axis: int, prod, cons):
    """``x = v + c`` (Add/Sub of a constant per channel, x read only by Sign nodes):
    sign(v + c) < 0 exactly when v < -c (float addition rounds no nonzero sum to 0),
    so the Sign can pack ``v`` against the threshold -c.  Returns (source, threshold)."""
    p = prod.get(x)
    if p is None or p.op not in ("Add", "Sub") or x in g.outputs or \
            any(u.op != "Sign" for u in cons.get(x, [])):
        return x, None
    a, b = p.inputs[0], p.inputs[1]
    if p.op == "Add" and g.tensors[a].is_const:
        a, b = b, a
    if not g.tensors[b].is_const or g.tensors[a].is_const or g.tensors[a].dtype != "float32" or \
            g.tensors[a].shape != g.tensors[x].shape:
        return x, None
    C = g.tensors[x].shape[axis]
    v = _per_channel(g, b, x, axis % g.tensors[x].rank, C)
    if v is None:
        return x, None
    c = v.astype(np.float32)
    t = c if p.op == "Sub" else -c
    if np.all(t == t[0]):
        t = t[:1]
    return a, t


# --- folding after a binary layer ----------------------------------------------------

def _per_channel(g: Graph, const: str, y: str, axis: int, C: int) -> np.ndarray | None:
    t = g.tensors[const]
    yt = g.tensors[y]
    if not t.is_const or t.dtype != "float32" or t.rank > yt.rank:
        return None
    shape = [1] * (yt.rank - t.rank) + list(t.shape)
    if any(d != 1 for i, d in enumerate(shape) if i != axis) or shape[axis] not in (1, C):
        return None
    return np.broadcast_to(t.data.reshape(shape), [C if i == axis else 1 for i in range(yt.rank)]) \
        .reshape(-1).astype(np.float64)


def fold_after_binary(g: Graph) -> int:
    """Per-channel Mul / Add / BatchNormalization and Relu / Clip after a binary
    layer with float output fold into its multiplier, bias and clamp."""
    folded = 0
    changed = True
    while changed:
        changed = False
        cons = g.consumers()
        for n in [n for n in g.nodes if n.op in BINARY_OPS]:
            y = n.outputs[0]
            if g.tensors[y].dtype != "float32" or y in g.outputs:
                continue
            users = cons.get(y, [])
            if len(users) != 1:
                continue
            u = users[0]
            axis = _channel_axis(g, n)
            O = g.tensors[n.inputs[1]].shape[0]
            m = g.tensors[n.inputs[2]].data.astype(np.float64)
            b = g.tensors[n.inputs[3]].data.astype(np.float64)
            act = n.attrs.get("act")
            if u.op in ("Relu", "Clip") and act is None:
                if u.op == "Relu":
                    n.attrs["act"] = [0.0, float("inf")]
                else:
                    lo, hi = u.attrs.get("min"), u.attrs.get("max")
                    n.attrs["act"] = [float("-inf") if lo is None else float(lo),
                                      float("inf") if hi is None else float(hi)]
            elif act is not None or n.attrs.get("dot_clamp") is not None:
                continue
            elif u.op in ("Mul", "Add") and len(u.inputs) == 2:
                other = u.inputs[1] if u.inputs[0] == y else u.inputs[0]
                v = _per_channel(g, other, y, axis, O)
                if v is None or g.tensors[u.outputs[0]].shape != g.tensors[y].shape:
                    continue
                if u.op == "Mul":
                    m, b = m * v, b * v
                else:
                    b = b + v
                n.inputs[2] = g.add_const(m.astype(np.float32), n.inputs[2] + "_f")
                n.inputs[3] = g.add_const(b.astype(np.float32), n.inputs[3] + "_f")
            elif u.op == "BatchNormalization":
                vals = [g.tensors[i].data for i in u.inputs[1:5]]
                if any(v is None for v in vals) or \
                        (1 if u.attrs.get("layout", "NCHW") == "NCHW" and g.tensors[y].rank > 1
                         else g.tensors[y].rank - 1) != axis:
                    continue
                scale, beta, mean, var = [v.astype(np.float64).reshape(-1) for v in vals]
                k = scale / np.sqrt(var + float(u.attrs.get("epsilon", 1e-5)))
                m, b = m * k, (b - mean) * k + beta
                n.inputs[2] = g.add_const(m.astype(np.float32), n.inputs[2] + "_f")
                n.inputs[3] = g.add_const(b.astype(np.float32), n.inputs[3] + "_f")
            else:
                continue
            out = u.outputs[0]
            n.outputs[0] = out
            g.nodes.remove(u)
            folded += 1
            changed = True
            break
    g.remove_dead()
    return folded


def dot_range(g: Graph, n: Node) -> int:
    """Largest |dot| of a binary layer with packed input (its number of weights per channel)."""
    return bnn.dot_bound(g, n)


def threshold_for(g: Graph, n: Node, pack_threshold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer thresholds T (bit = dot < T) equal to ``y(dot) < pack_threshold`` for
    every possible dot, with y the layer's float output transform; channels whose
    multiplier is negative are flipped (returned mask) so y grows with dot."""
    K = dot_range(g, n)
    O = g.tensors[n.inputs[1]].shape[0]
    m = g.tensors[n.inputs[2]].data.astype(np.float32).reshape(-1)
    flip = m < 0
    d = np.arange(-K, K + 1, dtype=np.int64)
    dd = np.where(flip[:, None], -d[None, :], d[None, :])      # the original dot for each row
    y = bnn.apply_output(g, n, dd, O, 0)                          # float32 [O, 2K+1]
    neg = y < np.broadcast_to(np.asarray(pack_threshold, np.float32).reshape(-1), (O,))[:, None]
    # after flipping, neg must be true for the smallest d only
    cnt = neg.sum(axis=1)
    ok = np.all(neg == (np.arange(2 * K + 1)[None, :] < cnt[:, None]), axis=1)
    if not np.all(ok):
        raise EdgecError("binary layer output is not monotonic in its dot product")
    T = -K + cnt
    T = np.where(cnt == 2 * K + 1, K + 1, T)
    return T.astype(np.int64), flip


def fuse_packed_outputs(g: Graph) -> int:
    """A binary layer (packed input) whose float output only feeds BitPacks along its
    channel axis writes the packed bits itself (thresholds folded at compile time)."""
    fused = 0
    cons = g.consumers()
    for n in [n for n in g.nodes if n.op in BINARY_OPS]:
        y = n.outputs[0]
        yt = g.tensors[y]
        if yt.dtype != "float32" or y in g.outputs or g.tensors[n.inputs[0]].dtype != "int32":
            continue
        users = cons.get(y, [])
        axis = _channel_axis(g, n)
        if not users or any(u.op != "BitPack" or (u.attrs.get("axis", -1) % yt.rank) != axis
                            for u in users):
            continue
        ths = [np.asarray(0.0 if u.attrs.get("threshold") is None else u.attrs["threshold"],
                          np.float32).reshape(-1) for u in users]
        if any(not np.array_equal(t, ths[0]) for t in ths[1:]):
            continue
        try:
            T, flip = threshold_for(g, n, ths[0])
        except EdgecError:
            continue
        C = int(n.attrs["channels_in"])
        w = g.tensors[n.inputs[1]].data
        if flip.any():
            neg = bnn.unpack(w, C, -1)
            neg[flip] = ~neg[flip]
            n.inputs[1] = g.add_const(bnn.pack(neg, -1), n.inputs[1] + "_flip")
        n.inputs = [n.inputs[0], n.inputs[1], "", "",
                    g.add_const(np.clip(T, bnn.INT32_MIN, bnn.INT32_MAX).astype(np.int32),
                                n.inputs[1] + "_thresh")]
        n.attrs["out"] = "bits"
        n.attrs["act"] = None
        n.attrs["dot_clamp"] = None
        first = users[0].outputs[0]
        n.outputs[0] = first
        for u in users:
            g.nodes.remove(u)
            if u.outputs[0] != first:
                g.replace_uses(u.outputs[0], first)
        fused += 1
        cons = g.consumers()
    return fused


# --- --binarize -------------------------------------------------------------------

@dataclass
class BinarizeConfig:
    layers: tuple = ("hidden",)       # names, output tensors, op types, "all" or "hidden"
    mode: str = "xnor"                # xnor: inputs and weights; weights: weights only
    calibration: Any = None           # data for the input centers and scales (xnor)
    max_samples: int = 200

    def check(self) -> None:
        if self.mode not in MODES:
            raise EdgecError(f"unknown --binarize-mode {self.mode!r} (one of: {', '.join(MODES)})")
        if not self.layers:
            raise EdgecError("--binarize needs layers: names, 'all' or 'hidden'")

    def to_json(self) -> dict:
        from .calibration import Dataset
        cal = self.calibration
        if isinstance(cal, Dataset):
            cal = cal.source
        elif cal is not None and not isinstance(cal, str):
            cal = str(cal) if hasattr(cal, "__fspath__") else "arrays"
        return {"layers": list(self.layers), "mode": self.mode, "calibration": cal}


def select_layers(g: Graph, items) -> list[Node]:
    """Conv/FullyConnected nodes named by ``items``: node names, output tensors, op
    types, ``all`` (every float Conv/FullyConnected) or ``hidden`` (all but the
    first and the last)."""
    cands = [n for n in g.nodes if n.op in ("Conv", "FullyConnected")]
    sel: list[Node] = []
    for item in items:
        s = str(item)
        if s == "all":
            hit = cands
        elif s == "hidden":
            hit = cands[1:-1]
        else:
            hit = [n for n in cands if s in (n.name, *n.outputs) or n.op.lower() == s.lower()]
            if not hit:
                names = ", ".join(n.name for n in cands[:12])
                raise EdgecError(f"{item!r} matches no Conv/FullyConnected layer (layers: {names}"
                                 f"{', ...' if len(cands) > 12 else ''}; or 'all', 'hidden')")
        for n in hit:
            if n not in sel:
                sel.append(n)
    order = {id(n): i for i, n in enumerate(g.nodes)}
    return sorted(sel, key=lambda n: order[id(n)])


def binarize(g: Graph, cfg: BinarizeConfig) -> tuple[Graph, dict]:
    """``--binarize``: the chosen float layers become binary layers (see the module doc)."""
    from . import calibration
    from ..ops import interp
    cfg.check()
    if any(t.quant is not None and not t.is_const for t in g.tensors.values()):
        raise EdgecError("--binarize works on float models (this one is quantized)")
    g = g.copy()
    g.fold_constants = False
    chosen = select_layers(g, cfg.layers)
    layers, skipped = [], []
    ds = None
    if cfg.mode == "xnor" and chosen:
        if cfg.calibration is None:
            raise EdgecError("--binarize (xnor mode) measures each binarized layer's input on data: "
                             "give --calibration data.npz (or --binarize-mode weights)")
        ds = calibration.get_dataset(g, cfg.calibration, "calibration", cfg.max_samples)
    cache: dict = {}
    for n in chosen:
        why = binarizable(g, n)
        if why:
            skipped.append({"name": n.name, "op": n.op, "reason": why})
            continue
        w = g.tensors[n.inputs[1]].data.astype(np.float64)
        wo = _ohwi(w, n.attrs["layout"]) if n.op == "Conv" else w
        bias = g.tensors[n.inputs[2]].data.astype(np.float64).reshape(-1) if n.input(2) \
            else np.zeros(wo.shape[0])
        created: list[Node] = []
        if n.op == "FullyConnected":
            x = _fc_input_2d(g, n, created)
            axis, channels = -1, wo.shape[1]
        else:
            x = n.inputs[0]
            axis, channels = (1 if n.attrs["layout"] == "NCHW" else 3), wo.shape[3]
        info = {"name": n.name, "op": n.op, "weights": int(w.size), "mode": cfg.mode}
        if cfg.mode == "weights":
            alpha = np.abs(wo).reshape(wo.shape[0], -1).mean(axis=1)
            new = _binary_layer(g, n, x, wo < 0, alpha, bias, channels, {})
        else:
            # x ~ center + beta * b per input channel; beta folds into the weights before
            # they are binarized, center's contribution into the bias (exactly)
            center, beta = _input_stats(g, n, x, axis, ds, interp, created)
            cshape = [1] * (wo.ndim - 1) + [-1]
            ws = wo * beta.reshape(cshape)
            active = np.broadcast_to((beta > 0).reshape(cshape), wo.shape)
            rows = wo.shape[0]
            cnt = active.reshape(rows, -1).sum(1)
            alpha = np.where(cnt > 0, np.abs(ws).reshape(rows, -1).sum(1) / np.maximum(cnt, 1), 0.0)
            neg = (ws < 0) & active
            inactive = (~active).reshape(rows, -1).sum(1)   # constant channels: bit always +1
            bias = bias + (wo * center.reshape(cshape)).reshape(rows, -1).sum(1) - alpha * inactive
            thr = np.where(beta > 0, center, -np.inf).astype(np.float32)
            xb = _bitpack(g, x, axis, thr, cache, created)
            new = _binary_layer(g, n, xb, neg, alpha, bias, channels, {})
            info.update(constant_inputs=int((beta <= 0).sum()), input_channels=int(beta.size))
        _replace(g, n, created + [new])
        g.topo_sort()
        layers.append(info)
    g.remove_dead()
    g.topo_sort()
    g.validate()
    desc = (f"binarize ({cfg.mode}: {len(layers)} layers with 1-bit weights, alpha = mean |w| per "
            f"channel" + (", inputs sign(x - center) with per-channel center and scale measured on "
                          "calibration data (scale folded into the weights, center into the bias)"
                          if cfg.mode == "xnor" else ", float inputs") +
            f": {', '.join(L['name'] for L in layers)})")
    g.meta.transforms = [*g.meta.transforms, desc]
    info = {"mode": cfg.mode, "layers": layers, "skipped": skipped,
            "calibration": ds.source if ds is not None else None}
    return g, info


def _input_stats(g: Graph, n: Node, x: str, axis: int, ds, interp, created):
    """Per-channel mean and mean absolute deviation of tensor ``x`` over the data
    (run on the graph as binarized so far; ``x`` may be a reshape just created)."""
    src = x
    reshaped = None
    if created and created[-1].outputs[0] == x:  # a new [M, K] view: measure its source
        reshaped = created[-1]
        src = reshaped.inputs[0]
    vals = []
    for s in ds.samples:
        env = interp.run(g, s, keep_all=True)
        v = np.asarray(env[src], np.float64)
        if reshaped is not None:
            v = v.reshape(g.tensors[x].shape)
        vals.append(np.moveaxis(v, axis, -1).reshape(-1, v.shape[axis]))
    allv = np.concatenate(vals)
    center = allv.mean(axis=0)
    beta = np.abs(allv - center).mean(axis=0)
    beta = np.where(np.isfinite(beta), beta, 0.0)
    return center.astype(np.float32), beta
