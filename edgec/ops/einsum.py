"""Einsum (numpy's Einstein summation, with ``...``) and Det (determinant of the
last two axes).

Einsum compiles to one loop nest: loops over the output labels, inner loops
over the summed labels, each operand indexed by the strides of its labels (a
repeated label in one operand reads its diagonal).  Det uses Gaussian
elimination with partial pivoting on a stack copy of each matrix.
"""
from __future__ import annotations

import numpy as np

from ..ir import dtypes
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register
from ._util import prod, strides


def parse(eq: str, shapes):
    """-> (operand label strings, output labels, {label: size}); ``...`` becomes
    upper-case placeholder labels (the equation's own labels are lower-case)."""
    eq = eq.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise EdgecError(f"Einsum: {len(terms)} operands in {eq!r}, {len(shapes)} inputs")
    ell_rank = 0
    for t, s in zip(terms, shapes):
        if "..." in t:
            ell_rank = max(ell_rank, len(s) - len(t.replace("...", "")))
    ell = "".join(chr(ord("A") + i) for i in range(ell_rank))
    labels = []
    sizes: dict[str, int] = {}
    for t, s in zip(terms, shapes):
        if "..." in t:
            n = len(s) - len(t.replace("...", ""))
            if n < 0:
                raise EdgecError(f"Einsum: {t!r} does not fit an operand of rank {len(s)}")
            t = t.replace("...", ell[ell_rank - n:])
        if len(t) != len(s) or not all(c.isalpha() for c in t):
            raise EdgecError(f"Einsum: {t!r} does not fit an operand of shape {list(s)}")
        for c, d in zip(t, s):
            if c in sizes and sizes[c] != d:
                if sizes[c] == 1 and c.isupper():
                    sizes[c] = d
                elif not (d == 1 and c.isupper()):
                    raise EdgecError(f"Einsum: label {c!r} has sizes {sizes[c]} and {d}")
            else:
                sizes.setdefault(c, d)
        labels.append(t)
    if arrow:
        out = rhs.replace("...", ell)
    else:
        counts = {}
        for t in labels:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c.islower()))
    for c in out:
        if c not in sizes:
            raise EdgecError(f"Einsum: output label {c!r} is not in any operand")
    return labels, out, sizes


@register
class Einsum(Op):
    name = "Einsum"

    def _parse(self, g, n):
        return parse(n.attrs["equation"], [g.tensors[i].shape for i in n.inputs])

    def infer(self, g, n):
        ts = [g.tensors[i] for i in n.inputs]
        if len({t.dtype for t in ts}) != 1:
            raise EdgecError("Einsum: operands of different types")
        if ts[0].dtype == "bool":
            raise UnsupportedError(["Einsum[bool]"])
        _, out, sizes = self._parse(g, n)
        return [OutSpec(tuple(sizes[c] for c in out), ts[0].dtype)]

    def reference(self, g, n, xs):
        labels, out, _ = self._parse(g, n)
        wide = [x.astype(np.float64) if x.dtype.kind == "f" else x for x in xs]
        y = np.einsum(",".join(labels) + "->" + out, *wide)
        return [np.asarray(y).astype(xs[0].dtype)]

    def macs(self, g, n):
        labels, out, sizes = self._parse(g, n)
        return prod(sizes.values())

    def emit(self, k):
        labels, out, sizes = self._parse(k.g, k.node)
        summed = [c for c in sorted(sizes) if c not in out]
        dt = k.tout().dtype
        ct = dtypes.c_type(dt)
        acc_t = ct if dtypes.is_float(dt) else ("uint64_t" if dt.startswith("uint") else "int64_t")

        def index(term, shape):
            st = strides(shape)
            parts = [f"l_{c} * {s}" for c, s, d in zip(term, st, shape) if d != 1]
            return " + ".join(parts) or "0"

        lines = []
        ind = "  "
        for c in out:
            lines.append(f"{ind}for (int l_{c} = 0; l_{c} < {sizes[c]}; ++l_{c}) {{")
            ind += "  "
        lines.append(f"{ind}{acc_t} acc = 0;")
        inner = ind
        for c in summed:
            lines.append(f"{inner}for (int l_{c} = 0; l_{c} < {sizes[c]}; ++l_{c}) {{")
            inner += "  "
        prod_expr = " * ".join(
            f"({acc_t}){k.x(i)}[{index(t, k.tin(i).shape)}]" for i, t in enumerate(labels))
        lines.append(f"{inner}acc += {prod_expr};")
        for _ in summed:
            inner = inner[:-2]
            lines.append(f"{inner}}}")
        lines.append(f"{ind}y0[{index(out, [sizes[c] for c in out])}] = ({ct})acc;")
        for _ in out:
            ind = ind[:-2]
            lines.append(f"{ind}}}")
        if not out:
            return "  {\n" + "\n".join("  " + ln for ln in lines) + "\n  }\n"
        return "\n".join(lines) + "\n"


@onnx_op("Einsum")
def _onnx_einsum(ctx, node):
    ins = [ctx.inp(node, i) for i in range(ctx.n_inputs(node))]
    ctx.add("Einsum", ins, [ctx.out(node)], {"equation": str(ctx.attr(node, "equation"))}, node.name)


@register
class Det(Op):
    name = "Det"

    def infer(self, g, n):
        x = g.tensors[n.inputs[0]]
        if x.rank < 2 or x.shape[-1] != x.shape[-2] or x.dtype not in dtypes.FLOAT_TYPES:
            raise UnsupportedError([f"Det of {x.dtype}{list(x.shape)}"])
        return [OutSpec(tuple(x.shape[:-2]), x.dtype)]

    def reference(self, g, n, xs):
        return [np.linalg.det(xs[0].astype(np.float64)).astype(xs[0].dtype)]

    def emit(self, k):
        x = k.tin(0)
        M = x.shape[-1]
        B = prod(x.shape[:-2])
        ct = dtypes.c_type(x.dtype)
        f = "f" if x.dtype == "float32" else ""
        return (f"  for (int b = 0; b < {B}; ++b) {{\n"
                f"    {ct} a[{M * M}];\n    {ct} det = 1;\n"
                f"    memcpy(a, {k.x(0)} + b * {M * M}, sizeof(a));\n"
                f"    for (int c = 0; c < {M}; ++c) {{\n"
                f"      int p = c;\n"
                f"      for (int r = c + 1; r < {M}; ++r)\n"
                f"        if (fabs{f}(a[r * {M} + c]) > fabs{f}(a[p * {M} + c])) p = r;\n"
                f"      if (a[p * {M} + c] == 0) {{ det = 0; break; }}\n"
                f"      if (p != c) {{\n"
                f"        for (int j = 0; j < {M}; ++j) {{\n"
                f"          const {ct} t = a[c * {M} + j]; a[c * {M} + j] = a[p * {M} + j]; a[p * {M} + j] = t;\n"
                f"        }}\n        det = -det;\n      }}\n"
                f"      det *= a[c * {M} + c];\n"
                f"      for (int r = c + 1; r < {M}; ++r) {{\n"
                f"        const {ct} m = a[r * {M} + c] / a[c * {M} + c];\n"
                f"        for (int j = c; j < {M}; ++j) a[r * {M} + j] -= m * a[c * {M} + j];\n"
                f"      }}\n    }}\n"
                f"    y0[b] = det;\n  }}\n")


@onnx_op("Det")
def _onnx_det(ctx, node):
    ctx.add("Det", [ctx.inp(node, 0)], [ctx.out(node)], {}, node.name)
