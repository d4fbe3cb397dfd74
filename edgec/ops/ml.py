"""The ``ai.onnx.ml`` operators converters put around models in real pipelines:
Scaler, Normalizer, Imputer, Binarizer, LinearClassifier, LinearRegressor (stacking
meta-learners), ArrayFeatureExtractor (as Gather) and ZipMap (removed).

Semantics follow onnxruntime (the reference edgec verifies against):

* ``Scaler``: ``y = float((x - offset) * scale)`` in the input's arithmetic
  (float, double, or an integer converted to float), offset/scale of length 1
  or F;
* ``Normalizer``: along the last axis of a rank-1 or rank-2 input, MAX
  (``x / max``), L1 (``x / sum |x|``), L2 (``sign(x) * sqrt(x^2 / sum x^2)``),
  unchanged where the norm is 0;
* ``LinearClassifier``: ``scores = x . W^T + b`` (float); one score column
  gives label ``score > 0`` (labels[1]/labels[0] when there are two labels, else
  1/0) and, with two labels, scores ``[1 - s, s]`` (onnxruntime applies no
  LOGISTIC there; PROBIT it does); several columns give the first maximum's
  label and the post transform;
* ``LinearRegressor``: ``x . W^T + b`` and the post transform (with one target
  only PROBIT applies);
* ``ZipMap`` turns the probability tensor into a sequence of maps, which a C
  program cannot hold: edgec compiles the probability tensor itself (one row
  of class scores per sample, in the class order of the ZipMap) and says so in
  the report.
"""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.cgen import c_float
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register
from .trees import POSTS, ort_logistic, ort_probit, ort_softmax, ort_softmax_zero

CTYPE = {"float32": "float", "float64": "double", "int32": "int32_t", "int64": "int64_t"}


def _rows(shape, what):
    if len(shape) == 1:
        return 1, int(shape[0])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    raise EdgecError(f"{what} takes [N, F] or [F] inputs, got {list(shape)}")


def _transform_rows(post: str, s: np.ndarray) -> np.ndarray:
    if post == "LOGISTIC":
        return ort_logistic(s)
    if post == "PROBIT":
        return ort_probit(s)
    if post == "SOFTMAX":
        return ort_softmax(s)
    if post == "SOFTMAX_ZERO":
        return ort_softmax_zero(s)
    return s.astype(np.float32)


def _c_transform(k, post: str, arr: str, n: int, ind: str = "    ") -> list[str]:
    if post == "NONE":
        return []
    k.need("ml_post")
    if post == "LOGISTIC":
        return [f"{ind}for (int c = 0; c < {n}; ++c) {arr}[c] = edgec_ml_logistic({arr}[c]);"]
    if post == "PROBIT":
        return [f"{ind}for (int c = 0; c < {n}; ++c) {arr}[c] = edgec_ml_probit({arr}[c]);"]
    if post == "SOFTMAX":
        return [f"{ind}edgec_ml_softmax({arr}, {n});"]
    return [f"{ind}edgec_ml_softmax_zero({arr}, {n});"]


# --- Scaler -------------------------------------------------------------------------

@register
class Scaler(Op):
    name = "Scaler"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype not in CTYPE:
            raise UnsupportedError([f"Scaler[{x.dtype}]"])
        if x.rank == 0:
            raise EdgecError("Scaler of a scalar")
        F = x.shape[-1] if x.rank == 1 else x.shape[1]
        m = len(n.attrs["scale"])
        if m not in (1, F) or len(n.attrs["offset"]) != m:
            raise EdgecError(f"Scaler: scale/offset of length {m} for {F} features")
        return [OutSpec(x.shape, "float32")]

    def reference(self, g, n, xs):
        x = xs[0]
        F = x.shape[-1] if x.ndim == 1 else x.shape[1]     # onnxruntime: element i uses i % F
        off = np.asarray(n.attrs["offset"], np.float32)
        sc = np.asarray(n.attrs["scale"], np.float32)
        wt = np.float64 if x.dtype == np.float64 else np.float32
        flat = x.reshape(-1).astype(wt)
        j = np.arange(flat.size) % F if len(off) > 1 else np.zeros(flat.size, np.int64)
        return [((flat - off.astype(wt)[j]) * sc.astype(wt)[j]).astype(np.float32).reshape(x.shape)]

    def emit(self, k):
        x = k.tin(0)
        n = k.node
        F = x.shape[-1] if x.rank == 1 else x.shape[1]
        total = x.size
        m = len(n.attrs["scale"])
        if m == 1:
            off, sc = c_float(n.attrs["offset"][0]), c_float(n.attrs["scale"][0])
            return (f"  for (int i = 0; i < {total}; ++i) y0[i] = (float)((x0[i] - {off}) * {sc});\n")
        o = k.const(np.asarray(n.attrs["offset"], np.float32), "float32", "offset")
        s = k.const(np.asarray(n.attrs["scale"], np.float32), "float32", "scale")
        return (f"  for (int i = 0; i < {total}; ++i) {{\n"
                f"    const int j = i % {F};\n"
                f"    y0[i] = (float)((x0[i] - {o}[j]) * {s}[j]);\n  }}\n")


@onnx_op("Scaler", domain="ai.onnx.ml")
def _onnx_scaler(ctx, node):
    scale = [float(v) for v in (ctx.attr(node, "scale") or [])]
    offset = [float(v) for v in (ctx.attr(node, "offset") or [])]
    if not scale:
        raise EdgecError("Scaler without scale")
    if len(offset) != len(scale):
        raise EdgecError("Scaler: scale and offset differ in length")
    ctx.add("Scaler", [ctx.inp(node, 0)], [ctx.out(node)], {"scale": scale, "offset": offset},
            node.name)


# --- Normalizer -------------------------------------------------------------------------

@register
class Normalizer(Op):
    name = "Normalizer"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype not in CTYPE:
            raise UnsupportedError([f"Normalizer[{x.dtype}]"])
        _rows(x.shape, "Normalizer")
        return [OutSpec(x.shape, "float32")]

    def reference(self, g, n, xs):
        x = xs[0]
        N, F = _rows(x.shape, "Normalizer")
        x2 = x.reshape(N, F)
        out = np.zeros((N, F), np.float32)
        norm = n.attrs["norm"]
        for r in range(N):
            row = x2[r]
            xf = row.astype(np.float32)
            if norm == "MAX":
                mx = np.float32(-3.4028235e38)
                for v in xf:
                    mx = v if mx < v else mx          # std::max: a NaN never wins
                out[r] = xf / mx if mx != 0 else xf
            elif norm == "L1":
                tot = np.float32(0)
                for v in row:
                    tot = np.float32(tot + np.float32(abs(v)))
                out[r] = xf / tot if tot != 0 else xf
            else:
                sq = (row * row).astype(np.float32)
                tot = np.float32(0)
                for v in sq:
                    tot = np.float32(tot + v)
                if tot != 0:
                    y = np.sqrt(sq / tot).astype(np.float32)
                    out[r] = np.where(row < 0, -y, y)
                else:
                    out[r] = xf
        return [out.reshape(x.shape)]

    def emit(self, k):
        x = k.tin(0)
        N, F = _rows(x.shape, "Normalizer")
        norm = k.node.attrs["norm"]
        ct = CTYPE[x.dtype]
        lines = [f"  for (int n = 0; n < {N}; ++n) {{",
                 f"    const {ct}* x = x0 + n * {F};",
                 f"    float* y = y0 + n * {F};"]
        if norm == "MAX":
            lines += ["    float m = -3.40282347e+38f;",
                      f"    for (int j = 0; j < {F}; ++j) {{ const float v = (float)x[j]; if (m < v) m = v; }}",
                      f"    for (int j = 0; j < {F}; ++j) y[j] = m != 0.0f ? (float)x[j] / m : (float)x[j];"]
        elif norm == "L1":
            absf = "fabs" if ct == "double" else ("fabsf" if ct == "float" else "")
            a = f"{absf}(x[j])" if absf else "(x[j] < 0 ? -x[j] : x[j])"
            lines += ["    float s = 0.0f;",
                      f"    for (int j = 0; j < {F}; ++j) s += (float)({a});",
                      f"    for (int j = 0; j < {F}; ++j) y[j] = s != 0.0f ? (float)x[j] / s : (float)x[j];"]
        else:
            lines += ["    float s = 0.0f;",
                      f"    for (int j = 0; j < {F}; ++j) {{ y[j] = (float)(x[j] * x[j]); s += y[j]; }}",
                      f"    for (int j = 0; j < {F}; ++j) {{",
                      "      if (s != 0.0f) { const float r = sqrtf(y[j] / s); y[j] = x[j] < 0 ? -r : r; }",
                      "      else y[j] = (float)x[j];",
                      "    }"]
        lines.append("  }")
        return "\n".join(lines) + "\n"


@onnx_op("Normalizer", domain="ai.onnx.ml")
def _onnx_normalizer(ctx, node):
    norm = ctx.attr(node, "norm", "MAX")
    norm = norm.decode() if isinstance(norm, bytes) else str(norm)
    if norm not in ("MAX", "L1", "L2"):
        raise EdgecError(f"Normalizer: unknown norm {norm[:20]!r}")
    ctx.add("Normalizer", [ctx.inp(node, 0)], [ctx.out(node)], {"norm": norm}, node.name)


# --- Imputer ------------------------------------------------------------------------------

@register
class Imputer(Op):
    name = "Imputer"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype not in ("float32", "int64"):
            raise UnsupportedError([f"Imputer[{x.dtype}]"])
        F = x.shape[-1] if x.rank == 1 else x.shape[1]
        if len(n.attrs["values"]) not in (1, F):
            raise EdgecError(f"Imputer: {len(n.attrs['values'])} imputed values for {F} features")
        return [OutSpec(x.shape, x.dtype)]

    def reference(self, g, n, xs):
        x = xs[0]
        F = x.shape[-1] if x.ndim == 1 else x.shape[1]
        vals = np.asarray(n.attrs["values"]).astype(x.dtype)
        flat = x.reshape(-1).copy()
        rep = n.attrs["replaced"]
        idx = np.arange(flat.size) % F if len(vals) == F else np.zeros(flat.size, np.int64)
        if x.dtype == np.float32 and np.isnan(rep):
            hit = np.isnan(flat)
        else:
            hit = flat == np.asarray(rep).astype(x.dtype)
        flat[hit] = vals[idx[hit]]
        return [flat.reshape(x.shape)]

    def emit(self, k):
        x = k.tin(0)
        n = k.node
        F = x.shape[-1] if x.rank == 1 else x.shape[1]
        vals = np.asarray(n.attrs["values"]).astype(dtypes.np_dtype(x.dtype))
        v = k.const(vals, x.dtype, "imputed")
        j = f"i % {F}" if len(vals) == F else "0"
        rep = n.attrs["replaced"]
        if x.dtype == "float32":
            hit = "(x0[i] != x0[i])" if np.isnan(rep) else f"(x0[i] == {c_float(rep)})"
        else:
            hit = f"(x0[i] == INT64_C({int(rep)}))"
        return f"  for (int i = 0; i < {x.size}; ++i) y0[i] = {hit} ? {v}[{j}] : x0[i];\n"


@onnx_op("Imputer", domain="ai.onnx.ml")
def _onnx_imputer(ctx, node):
    x = ctx.inp(node, 0)
    fl = ctx.attr(node, "imputed_value_floats")
    il = ctx.attr(node, "imputed_value_int64s")
    if ctx.t(x).dtype == "float32":
        if not fl:
            raise EdgecError("Imputer on floats without imputed_value_floats")
        vals, rep = [float(v) for v in fl], float(ctx.attr(node, "replaced_value_float", 0.0))
    else:
        if not il:
            raise EdgecError("Imputer on integers without imputed_value_int64s")
        vals, rep = [int(v) for v in il], int(ctx.attr(node, "replaced_value_int64", 0))
    ctx.add("Imputer", [x], [ctx.out(node)], {"values": vals, "replaced": rep}, node.name)


# --- Binarizer ------------------------------------------------------------------------------

@register
class Binarizer(Op):
    name = "Binarizer"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype not in CTYPE:
            raise UnsupportedError([f"Binarizer[{x.dtype}]"])
        return [OutSpec(x.shape, x.dtype)]

    def reference(self, g, n, xs):
        x = xs[0]
        t = np.float32(n.attrs["threshold"])
        with np.errstate(invalid="ignore"):
            hit = (x.astype(np.float64) > float(t)) if x.dtype.kind != "f" else x > t.astype(x.dtype)
        return [np.where(hit, 1, 0).astype(x.dtype)]

    def emit(self, k):
        x = k.tin(0)
        t = c_float(k.node.attrs["threshold"])
        return f"  for (int i = 0; i < {x.size}; ++i) y0[i] = x0[i] > {t} ? 1 : 0;\n"


@onnx_op("Binarizer", domain="ai.onnx.ml")
def _onnx_binarizer(ctx, node):
    """``x > threshold ? 1 : 0`` in the input type (threshold 0 when absent, as the
    standard says; a NaN gives 0 where onnxruntime refuses it)."""
    ctx.add("Binarizer", [ctx.inp(node, 0)], [ctx.out(node)],
            {"threshold": float(ctx.attr(node, "threshold", 0.0))}, node.name)


# --- linear models -------------------------------------------------------------------------------

def _linear_scores(x: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    s = x.astype(np.float64) @ W.astype(np.float64).T
    if b is not None:
        s = s + b
    return s.astype(np.float32)


@register
class LinearClassifier(Op):
    name = "LinearClassifier"

    def _dims(self, g, n):
        x = g.tensors[n.inputs[0]]
        N, F = _rows(x.shape, "LinearClassifier")
        W = n.attrs["coefficients"]
        C = W.shape[0]
        if W.shape[1] != F:
            raise EdgecError(f"LinearClassifier: {W.size} coefficients for {C} classes of {F} features")
        return N, F, C

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype not in CTYPE:
            raise UnsupportedError([f"LinearClassifier[{x.dtype}]"])
        N, F, C = self._dims(g, n)
        out_c = 2 if n.attrs["add_second_class"] else C
        return [OutSpec((N,), "int64"), OutSpec((N, out_c), "float32")]

    def reference(self, g, n, xs):
        N, F, C = self._dims(g, n)
        x = xs[0].reshape(N, F).astype(np.float32)
        W, b = n.attrs["coefficients"], n.attrs["intercepts"]
        labels = np.asarray(n.attrs["labels"], np.int64)
        s = _linear_scores(x, W, b)
        post = n.attrs["post_transform"]
        if C == 1:
            two = len(labels) == 2
            pos, neg = (labels[1], labels[0]) if two else (1, 0)
            lab = np.where(s[:, 0] > 0, pos, neg).astype(np.int64)
            if post == "PROBIT":
                sc = ort_probit(s)
                if n.attrs["add_second_class"]:
                    sc = np.concatenate([sc, np.zeros_like(sc)], axis=1)   # see emit
                return [lab, sc]
            if n.attrs["add_second_class"]:
                return [lab, np.concatenate([np.float32(1) - s, s], axis=1).astype(np.float32)]
            return [lab, s]
        best = np.argmax(s, axis=1)     # first maximum, like onnxruntime
        lab = labels[best] if len(labels) >= C else best
        return [lab.astype(np.int64), _transform_rows(post, s)]

    def emit(self, k):
        g, n = k.g, k.node
        N, F, C = self._dims(g, n)
        ct = CTYPE[k.tin(0).dtype]
        W = k.const(n.attrs["coefficients"].reshape(-1), "float32", "coef")
        b = k.const(n.attrs["intercepts"], "float32", "intercept")
        labels = np.asarray(n.attrs["labels"], np.int64)
        post = n.attrs["post_transform"]
        L = [f"  for (int n = 0; n < {N}; ++n) {{",
             f"    const {ct}* x = x0 + n * {F};",
             f"    float s[{C}];",
             f"    for (int c = 0; c < {C}; ++c) {{",
             "      float a = 0.0f;",
             f"      for (int j = 0; j < {F}; ++j) a += (float)x[j] * {W}[c * {F} + j];",
             f"      s[c] = a + {b}[c];",
             "    }"]
        oc = 2 if n.attrs["add_second_class"] else C
        L.append(f"    float* out = y1 + n * {oc};")
        if C == 1:
            two = len(labels) == 2
            pos, neg = (int(labels[1]), int(labels[0])) if two else (1, 0)
            L.append(f"    y0[n] = s[0] > 0.0f ? INT64_C({pos}) : INT64_C({neg});")
            if post == "PROBIT":
                k.need("ml_post")
                L.append("    out[0] = edgec_ml_probit(s[0]);")
                if n.attrs["add_second_class"]:
                    L.append("    out[1] = 0.0f;  /* onnxruntime leaves it unwritten */")
            elif n.attrs["add_second_class"]:
                L += ["    out[0] = 1.0f - s[0];", "    out[1] = s[0];"]
            else:
                L.append("    out[0] = s[0];")
        else:
            L += ["    int best = 0;",
                  f"    for (int c = 1; c < {C}; ++c) if (s[c] > s[best]) best = c;"]
            if len(labels) >= C and not np.array_equal(labels[:C], np.arange(C)):
                lt = k.const(labels[:C], "int64", "labels")
                L.append(f"    y0[n] = {lt}[best];")
            else:
                L.append("    y0[n] = (int64_t)best;")
            L.append(f"    for (int c = 0; c < {C}; ++c) out[c] = s[c];")
            L += _c_transform(k, post, "out", C)
        L.append("  }")
        return "\n".join(L) + "\n"


@register
class LinearRegressor(Op):
    name = "LinearRegressor"

    def _dims(self, g, n):
        x = g.tensors[n.inputs[0]]
        N, F = _rows(x.shape, "LinearRegressor")
        W = n.attrs["coefficients"]
        if W.shape[1] != F:
            raise EdgecError(f"LinearRegressor: {W.size} coefficients for {W.shape[0]} targets of "
                             f"{F} features")
        return N, F, W.shape[0]

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.dtype != "float32":
            raise UnsupportedError([f"LinearRegressor[{x.dtype}]"])
        N, F, T = self._dims(g, n)
        return [OutSpec((N, T), "float32")]

    def reference(self, g, n, xs):
        N, F, T = self._dims(g, n)
        s = _linear_scores(xs[0].reshape(N, F), n.attrs["coefficients"], n.attrs["intercepts"])
        post = n.attrs["post_transform"]
        if T == 1:
            return [ort_probit(s) if post == "PROBIT" else s]
        return [_transform_rows(post, s)]

    def emit(self, k):
        g, n = k.g, k.node
        N, F, T = self._dims(g, n)
        W = k.const(n.attrs["coefficients"].reshape(-1), "float32", "coef")
        b = n.attrs["intercepts"]
        bs = k.const(b, "float32", "intercept") if b is not None else None
        post = n.attrs["post_transform"]
        L = [f"  for (int n = 0; n < {N}; ++n) {{",
             f"    const float* x = x0 + n * {F};",
             f"    float* out = y0 + n * {T};",
             f"    for (int c = 0; c < {T}; ++c) {{",
             "      float a = 0.0f;",
             f"      for (int j = 0; j < {F}; ++j) a += x[j] * {W}[c * {F} + j];",
             f"      out[c] = a{' + ' + bs + '[c]' if bs else ''};",
             "    }"]
        if T == 1:
            if post == "PROBIT":
                L += _c_transform(k, post, "out", 1)
        else:
            L += _c_transform(k, post, "out", T)
        L.append("  }")
        return "\n".join(L) + "\n"


def _post(ctx, node) -> str:
    p = ctx.attr(node, "post_transform", "NONE")
    p = p.decode() if isinstance(p, bytes) else str(p)
    if p not in POSTS:
        raise EdgecError(f"unknown post_transform {p[:20]!r}")
    return p


def _linear_input(ctx, node) -> str:
    x = ctx.inp(node, 0)
    if ctx.t(x).dtype != "float32":      # onnxruntime casts the input to float first
        y = ctx.tmp(x + "_float")
        ctx.add("Cast", [x], [y], {"to": "float32"})
        x = y
    return x


@onnx_op("LinearClassifier", domain="ai.onnx.ml")
def _onnx_linear_classifier(ctx, node):
    coef = np.asarray(ctx.attr(node, "coefficients") or [], np.float32)
    inter = np.asarray(ctx.attr(node, "intercepts") or [], np.float32)
    C = len(inter)
    if C == 0 or coef.size == 0 or coef.size % C:
        raise EdgecError("LinearClassifier: coefficients do not split into one row per intercept")
    strings = ctx.attr(node, "classlabels_strings")
    ints = ctx.attr(node, "classlabels_ints")
    if strings:
        table = [s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s) for s in strings]
        labels = np.arange(len(table), dtype=np.int64)
    else:
        table = None
        labels = np.asarray(list(ints or []), np.int64)
    if C == 1 and len(labels) != 2 and table is not None:
        raise UnsupportedError(["LinearClassifier with one score column and string labels "
                                "other than two"])
    x = _linear_input(ctx, node)
    F = coef.size // C
    outs = [ctx.out(node, 0) or ctx.tmp("linear_label"), ctx.out(node, 1) or ctx.tmp("linear_scores")]
    ctx.add("LinearClassifier", [x], outs,
            {"coefficients": coef.reshape(C, F), "intercepts": inter, "labels": labels,
             "post_transform": _post(ctx, node), "add_second_class": C == 1 and len(labels) == 2},
            node.name)
    if table is not None:
        ctx.g.meta.labels[outs[0]] = table


@onnx_op("LinearRegressor", domain="ai.onnx.ml")
def _onnx_linear_regressor(ctx, node):
    T = int(ctx.attr(node, "targets", 1))
    coef = np.asarray(ctx.attr(node, "coefficients") or [], np.float32)
    if T <= 0 or coef.size == 0 or coef.size % T:
        raise EdgecError("LinearRegressor: coefficients do not split into one row per target")
    inter = ctx.attr(node, "intercepts")
    inter = np.asarray(inter, np.float32) if inter is not None and len(inter) == T else None
    x = ctx.inp(node, 0)
    if ctx.t(x).dtype != "float32":
        raise UnsupportedError([f"LinearRegressor[{ctx.t(x).dtype}]"])
    ctx.add("LinearRegressor", [x], [ctx.out(node)],
            {"coefficients": coef.reshape(T, -1), "intercepts": inter,
             "post_transform": _post(ctx, node)}, node.name)


# --- ArrayFeatureExtractor, ZipMap -----------------------------------------------------------

@onnx_op("ArrayFeatureExtractor", domain="ai.onnx.ml")
def _onnx_afe(ctx, node):
    """``X[..., indices]`` (as Gather on the last axis); a 1-D X gives [1, len(indices)]."""
    x, idx = ctx.inp(node, 0), ctx.inp(node, 1)
    xt = ctx.t(x)
    if xt.rank == 0:
        raise EdgecError("ArrayFeatureExtractor of a scalar")
    flat = idx
    if ctx.t(idx).rank != 1:
        flat = ctx.tmp(idx + "_flat")
        ctx.add("Reshape", [idx], [flat], {"shape": [ctx.t(idx).size]})
    out = ctx.out(node)
    if xt.rank == 1:
        y = ctx.tmp(out + "_1d")
        ctx.add("Gather", [x, flat], [y], {"axis": 0})
        ctx.add("Reshape", [y], [out], {"shape": [1, ctx.t(flat).size]})
    else:
        ctx.add("Gather", [x, flat], [out], {"axis": xt.rank - 1}, node.name)


@onnx_op("ZipMap", domain="ai.onnx.ml")
def _onnx_zipmap(ctx, node):
    """A sequence of {class: probability} maps cannot exist in C: the output is the
    probability tensor itself ([N, C], columns in the ZipMap's class order)."""
    src = ctx.inp(node, 0)
    if not node.output or not node.output[0]:
        return
    ctx.names[node.output[0]] = src
    labels = ctx.attr(node, "classlabels_int64s")
    if labels is None:
        labels = ctx.attr(node, "classlabels_strings") or []
    shape = ctx.t(src).shape
    if len(shape) != 2 or shape[1] != len(labels):
        raise EdgecError(f"ZipMap: {len(labels)} class labels for a probability tensor "
                         f"{list(shape)} (expected [N, {len(labels)}])")
    note = (f"ZipMap output {node.output[0][:60]!r} compiled as the probability tensor "
            f"{list(ctx.t(src).shape)} (a C program has no maps): column j is class "
            f"{', '.join(str(v) for v in list(labels)[:10])}{' ...' if len(labels) > 10 else ''}")
    ctx.g.meta.transforms = [*ctx.g.meta.transforms, note]
    ctx.g.meta.zipmap[node.output[0]] = src


# ops whose first output holds the values of their first input (rearranged or selected):
# a class-label index keeps its label table through them
LABEL_KEEPING = ("Gather", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Copy", "Identity",
                 "Transpose", "Expand")


def propagate_labels(g) -> None:
    """Carry string label tables (``g.meta.labels``) from a table or a classifier's
    label output to the tensors computed from it by selection and reshaping, so a
    graph output that holds label indices has its table (header, report, verify)."""
    labels = g.meta.labels
    for n in g.nodes:
        if n.op in LABEL_KEEPING and n.inputs and n.inputs[0] in labels and n.outputs:
            labels.setdefault(n.outputs[0], labels[n.inputs[0]])
        elif n.op == "Cast" and n.inputs[0] in labels and g.tensors[n.outputs[0]].dtype == "int64":
            labels.setdefault(n.outputs[0], labels[n.inputs[0]])
