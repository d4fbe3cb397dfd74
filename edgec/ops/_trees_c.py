"""C for :class:`edgec.ops.trees.TreeEnsemble`: trees as data or as code.

**Data** (the default for size): per ensemble, flat arrays in flash with the
narrowest types that fit: ``feat`` (feature of each internal node), ``thr``
(threshold: float, double, or uint8/uint16 levels with integer features),
``kl``/``kr`` (tree-local child references: ``r < ni`` is internal node
``base[t] + r``, ``r >= ni`` is a leaf), ``base`` (first internal node of each
tree), optional ``flags`` (branch mode and NaN direction when they vary), and
the leaves: either every leaf of every tree in order (leaf ``base[t] + t +
r - ni``), or a table of the distinct leaf payloads (leaf ``r - ni``),
whichever is smaller.  A payload is stored as a dense vector (every leaf has
weights for the same classes), one value (with a constant, per-tree or
per-leaf target), or a sparse (target, value) list.

**Code**: one function per tree, nested ``if``\\ s with the thresholds as
literals, returning the leaf; a table of the functions; the same leaf storage.

Scores accumulate tree by tree in the threshold type and are finalized exactly
as the numpy reference in :mod:`edgec.ops.trees` (onnxruntime's semantics).
"""
from __future__ import annotations

import numpy as np

from ..ir.cgen import c_double, c_float
from ..ir.errors import EdgecError
# C comparison per node mode (edgec.ops.trees.MODES order: LEQ, LT, GTE, GT, EQ, NEQ)
C_CMP = ("<=", "<", ">=", ">", "==", "!=")

LOOP_CODE_BYTES = 160        # estimated Thumb-2 bytes of the data layout's traversal loop
CODE_NODE_BYTES = {"float": 16, "int": 8}   # estimated bytes per internal node as code
CODE_LEAF_BYTES = 4
CODE_TREE_BYTES = 12
MAX_CODE_DEPTH = 400


def _uint(maxval: int) -> tuple[str, int]:
    if maxval < (1 << 8):
        return "uint8", 1
    if maxval < (1 << 16):
        return "uint16", 2
    return "uint32", 4


def _ctype(dt: str) -> str:
    return {"uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t"}[dt]


# --- leaf payloads ------------------------------------------------------------------

class LeafPlan:
    """How leaf weights are stored and how a leaf adds to the scores.

    ``form``: "dense" (every leaf has weights for the same target sequence:
    values only), "single" (one weight per leaf; its target is constant, per
    tree or per leaf) or "sparse" ((target, value) lists).  One-target
    regressors use the first weight of each leaf only (as onnxruntime)."""

    def __init__(self, ens):  # an edgec.ops.trees.Ensemble
        self.ens = ens
        NL = ens.n_leaves
        ptr, tg, val = ens.leaf_ptr, ens.leaf_target, ens.leaf_value
        cnt = np.diff(ptr)
        if ens.kind == "regressor" and ens.n_outputs == 1:
            tg = np.zeros(NL, np.int64)
            val = val[ptr[:-1]]
            ptr = np.arange(NL + 1)
            cnt = np.ones(NL, np.int64)
        self.ptr, self.tg, self.val = ptr, tg, val
        self.wsize = 4 if ens.tdtype == "float32" else 8
        self.tree_of_leaf = np.repeat(np.arange(ens.n_trees), np.diff(ens.node_base) + 1)
        K = ens.n_outputs
        self.form = "sparse"
        if NL and np.all(cnt == cnt[0]):
            w = int(cnt[0])
            rows = tg.reshape(NL, w)
            if np.all(rows == rows[0]):
                self.form = "dense"
                self.targets = tuple(int(t) for t in rows[0])
                self.values = val.reshape(NL, w)
        if self.form == "dense" and len(self.targets) == 1:
            self.form = "single"
            self.target_mode = "const"
            self.const_target = self.targets[0]
            self.values = val
            self.leaf_targets = tg
        elif self.form == "sparse" and NL and np.all(cnt == 1):
            self.form = "single"
            self.values = val
            self.leaf_targets = tg
            t = self.tree_of_leaf
            T = ens.n_trees
            lo = np.full(T, K, np.int64)
            hi = np.full(T, -1, np.int64)
            np.minimum.at(lo, t, tg)
            np.maximum.at(hi, t, tg)
            if np.all(lo == hi):
                self.target_mode = "tree"
                self.tree_targets = [int(v) for v in lo]
            else:
                self.target_mode = "leaf"
        # has-score knowledge per target: always (some tree gives it at every leaf),
        # never (no leaf has it), or dynamic
        seen = np.zeros(K, bool)
        always = np.zeros(K, bool)
        if self.form == "dense":
            seen[list(self.targets)] = True
            always[list(self.targets)] = ens.n_trees > 0
        elif self.form == "single":
            seen[np.unique(tg)] = True
            if self.target_mode == "const":
                always[self.const_target] = True
            elif self.target_mode == "tree":
                always[np.unique(self.tree_targets)] = True
            else:
                t = self.tree_of_leaf
                lo = np.full(ens.n_trees, K, np.int64)
                hi = np.full(ens.n_trees, -1, np.int64)
                np.minimum.at(lo, t, tg)
                np.maximum.at(hi, t, tg)
                same = lo == hi
                always[np.unique(lo[same])] = True
        else:
            seen[np.unique(tg)] = True
            for t in range(ens.n_trees):
                cover = None
                for lf in range(int(ens.node_base[t]) + t, int(ens.node_base[t + 1]) + t + 1):
                    ts = set(tg[ptr[lf]:ptr[lf + 1]].tolist())
                    cover = ts if cover is None else cover & ts
                for x in cover or ():
                    always[x] = True
        self.always = always
        self.never = ~seen
        self.static_has = bool(np.all(always | ~seen))

    def payload(self, lf: int):
        return tuple((int(self.tg[j]), float(self.val[j])) for j in range(self.ptr[lf], self.ptr[lf + 1]))

    def distinct(self):
        """(id of every leaf in the table of distinct payloads, leaf of each table entry)."""
        NL = self.ens.n_leaves
        if NL == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if self.form == "dense":
            keys = self.values
        elif self.form == "single" and self.target_mode in ("const", "tree"):
            keys = self.values.reshape(-1, 1)
        elif self.form == "single":
            keys = np.stack([self.leaf_targets.astype(np.float64), self.values], axis=1)
        else:
            index: dict = {}
            ids = np.zeros(NL, np.int64)
            first = []
            for lf in range(NL):
                kk = self.payload(lf)
                j = index.get(kk)
                if j is None:
                    j = index[kk] = len(first)
                    first.append(lf)
                ids[lf] = j
            return ids, np.asarray(first, np.int64)
        _, first, inv = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        # table in order of first appearance (deterministic and close to tree order)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return rank[inv.reshape(-1)], first[order]

    def payload_bytes(self, leaves: np.ndarray) -> int:
        n = len(leaves)
        if self.form == "dense":
            return n * len(self.targets) * self.wsize
        if self.form == "single":
            extra = 0
            if self.target_mode == "leaf":
                extra = n * _uint(self.ens.n_outputs - 1)[1]
            elif self.target_mode == "tree":
                extra = self.ens.n_trees * _uint(self.ens.n_outputs - 1)[1]
            return n * self.wsize + extra
        nnz = int(np.sum(np.diff(self.ptr)[leaves])) if n else 0
        return nnz * (self.wsize + _uint(self.ens.n_outputs - 1)[1]) + (n + 1) * _uint(nnz)[1]


def plan_addressing(ens, lp: LeafPlan):  # ens: an edgec.ops.trees.Ensemble
    """Leaf addressing, ids and reference width: ("table" with distinct payloads) or
    ("tree" with every leaf), whichever needs fewer bytes for leaves plus child refs."""
    sizes = np.diff(ens.node_base)
    max_ni = int(sizes.max(initial=0))
    NI = ens.n_internal
    every = np.arange(ens.n_leaves)
    ref_tree = _uint(2 * max_ni)
    tree_bytes = lp.payload_bytes(every) + 2 * NI * ref_tree[1]
    ids, uniq = lp.distinct()
    ref_table = _uint(max_ni + len(uniq) - 1 if len(uniq) else max_ni)
    table_bytes = lp.payload_bytes(uniq) + 2 * NI * ref_table[1]
    if table_bytes < tree_bytes and sizes.min(initial=1) > 0:
        return "table", ids, uniq, ref_table
    return "tree", every, every, ref_tree


# --- the kernel ------------------------------------------------------------------------

class _Gen:
    def __init__(self, k):
        self.k = k
        g, n = k.g, k.node
        self.ens = n.attrs["ensemble"]  # an edgec.ops.trees.Ensemble
        self.fq = n.attrs.get("fq")
        ens = self.ens
        x = k.tin(0)
        self.N, self.F = (1, x.shape[0]) if len(x.shape) == 1 else (x.shape[0], x.shape[1])
        self.xt = {"float32": "float", "float64": "double", "int32": "int32_t",
                   "int64": "int64_t", "uint8": "uint8_t", "uint16": "uint16_t"}[x.dtype]
        self.acc = "float" if ens.tdtype == "float32" else "double"
        self.lit = c_float if ens.tdtype == "float32" else c_double
        self.lp = LeafPlan(ens)
        self.addr, self.leaf_ids, self.uniq, self.ref = plan_addressing(ens, self.lp)
        self.options = k.options or {}

    # -- sizes (for the choice and the report) --
    def node_bytes(self) -> int:
        ens, fq = self.ens, self.fq
        NI = ens.n_internal
        fw = _uint(max((len(fq.used) if fq else ens.n_features) - 1, 0))[1]
        tw = (fq.bits // 8) if fq else (4 if ens.tdtype == "float32" else 8)
        b = NI * (fw + tw + 2 * self.ref[1])
        if self._flags() is not None:
            b += NI
        if ens.n_trees > 1:
            b += (ens.n_trees + 1) * _uint(NI)[1]
        if fq and not fq.direct:
            b += len(fq.used) * (8 + _uint(self.F - 1)[1])
        return b

    def leaf_bytes(self) -> int:
        return self.lp.payload_bytes(self.uniq)

    def estimate(self) -> dict:
        ens = self.ens
        data = self.node_bytes() + self.leaf_bytes() + LOOP_CODE_BYTES
        per_node = CODE_NODE_BYTES["int" if self.fq else "float"]
        code = (ens.n_internal * per_node + ens.n_leaves * CODE_LEAF_BYTES +
                ens.n_trees * CODE_TREE_BYTES + self.leaf_bytes() + (
                    len(self.fq.used) * (8 + _uint(self.F - 1)[1])
                    if self.fq and not self.fq.direct else 0))
        return {"data": int(data), "code": int(code)}

    def _flags(self):
        """None, or the per-node flag array (mode in bits 0-2, NaN-true in bit 3)."""
        ens, fq = self.ens, self.fq
        if ens.n_internal == 0:
            return None
        if fq is not None:
            nl = fq.nan_left
            if nl.all() or not nl.any():
                return None
            return nl.astype(np.uint8) << 3
        modes_vary = len(np.unique(ens.mode)) > 1
        miss_vary = ens.missing.any() and not ens.missing.all()
        if not modes_vary and not miss_vary:
            return None
        return ens.mode.astype(np.uint8) | (ens.missing.astype(np.uint8) << 3)

    # -- emission --
    def emit(self) -> str:
        ens = self.ens
        layout = self.options.get("trees", "auto") or "auto"
        if layout not in ("auto", "data", "code"):
            raise EdgecError(f"unknown --trees layout {layout!r} (data, code or auto)")
        est = self.estimate()
        if layout == "auto":
            layout = "code" if est["code"] < est["data"] else "data"
        if layout == "code" and ens.n_internal and ens.max_depth() > MAX_CODE_DEPTH:
            layout = "data"
        self.layout = layout
        rep = {"layout": layout, "estimate_bytes": est, "leaf_storage": self.addr,
               "leaf_form": self.lp.form, "distinct_leaves": len(self.uniq), **ens.summary()}
        if self.fq is not None:
            rep["feature_quantization"] = dict(self.fq.stats)
        if ens.notes:
            rep["notes"] = list(ens.notes)
        self.k.report["trees"] = rep
        lines = []
        w = lines.append
        K = ens.n_outputs
        w(f"  /* {ens.n_trees} trees, {ens.n_internal} internal nodes, {ens.n_leaves} leaves "
          f"({len(self.uniq)} stored, {self.lp.form}), trees as {layout} */")
        self._leaf_arrays()
        if layout == "data":
            self._node_arrays()
        else:
            self._tree_functions()
        if self.fq is not None and not self.fq.direct:
            self._quant_arrays()
        w(f"  for (int n = 0; n < {self.N}; ++n) {{")
        w(f"    const {self.xt}* x = x0 + n * {self.F};")
        w(f"    {self.acc} s[{K}];")
        dyn = not self.lp.static_has or ens.aggregate in ("MIN", "MAX") and ens.kind == "regressor"
        self.dyn_has = dyn
        if dyn:
            w(f"    uint8_t has[{K}];")
        w(f"    for (int k = 0; k < {K}; ++k) {{ s[k] = 0;{' has[k] = 0;' if dyn else ''} }}")
        if self.fq is not None and self.fq.direct:
            w(f"    const {self.xt}* q = x;")
        elif self.fq is not None:
            self._quantize(w)
        if layout == "data":
            self._traverse(w)
        else:
            self._call_trees(w)
        if ens.kind == "regressor":
            self._finalize_regressor(w)
        else:
            self._finalize_classifier(w)
        w("  }")
        return "\n".join(lines) + "\n"

    # arrays
    def _leaf_arrays(self):
        lp, k = self.lp, self.k
        wdt = "float32" if self.ens.tdtype == "float32" else "float64"
        uniq = self.uniq
        if lp.form == "dense":
            self.lv = k.const(lp.values[uniq].reshape(-1), wdt, "leafval")
        elif lp.form == "single":
            self.lv = k.const(lp.values[uniq], wdt, "leafval")
            tdt = _uint(self.ens.n_outputs - 1)[0]
            if lp.target_mode == "leaf":
                self.ltg = k.const(lp.leaf_targets[uniq], tdt, "leaftarget")
            elif lp.target_mode == "tree":
                self.ttg = k.const(np.array(lp.tree_targets), tdt, "treetarget")
        else:
            ptr, tg, vals = [0], [], []
            for lf in uniq:
                for t, v in lp.payload(int(lf)):
                    tg.append(t)
                    vals.append(v)
                ptr.append(len(tg))
            self.lptr = k.const(np.array(ptr), _uint(len(tg))[0], "leafptr")
            self.ltg = k.const(np.array(tg), _uint(self.ens.n_outputs - 1)[0], "leaftarget")
            self.lv = k.const(np.array(vals, np.float64), wdt, "leafval")

    def _refs(self):
        """Child references (tree-local) rewritten for the leaf addressing."""
        ens = self.ens
        left = ens.left.copy()
        right = ens.right.copy()
        if self.fq is not None:
            sw = self.fq.swapped
            left[sw], right[sw] = ens.right[sw], ens.left[sw]
        if self.addr == "table":
            for t in range(ens.n_trees):
                b, e = int(ens.node_base[t]), int(ens.node_base[t + 1])
                ni = e - b
                for arr in (left, right):
                    seg = arr[b:e]
                    leaf = seg >= ni
                    glob = b + t + (seg[leaf] - ni)
                    seg[leaf] = ni + self.leaf_ids[glob]
                    arr[b:e] = seg
        return left, right

    def _node_arrays(self):
        ens, fq, k = self.ens, self.fq, self.k
        NI = ens.n_internal
        if NI == 0:
            return
        left, right = self._refs()
        rdt = self.ref[0]
        self.kl = k.const(left, rdt, "left")
        self.kr = k.const(right, rdt, "right")
        if fq is not None:
            self.feat = k.const(fq.feature, _uint(max(len(fq.used) - 1, 0))[0], "feature")
            self.thr = k.const(fq.qthreshold, "uint8" if fq.bits == 8 else "uint16", "threshold")
        else:
            self.feat = k.const(ens.feature, _uint(max(ens.n_features - 1, 0))[0], "feature")
            self.thr = k.const(ens.threshold, ens.tdtype, "threshold")
        fl = self._flags()
        self.flags = k.const(fl, "uint8", "flags") if fl is not None else None
        if ens.n_trees > 1:
            self.base = k.const(ens.node_base, _uint(NI)[0], "treebase")

    def _quant_arrays(self):
        fq, k = self.fq, self.k
        self.qmap = k.const(fq.used, _uint(max(self.F - 1, 0))[0], "qfeature")
        self.qlo = k.const(fq.lo, "float32", "qlo")
        self.qinv = k.const(fq.inv, "float32", "qscale")

    def _quantize(self, w):
        fq = self.fq
        qt = "uint8_t" if fq.bits == 8 else "uint16_t"
        U = len(fq.used)
        w(f"    {qt} q[{U}];")
        w(f"    for (int j = 0; j < {U}; ++j) {{")
        w(f"      const float v = ((float)x[{self.qmap}[j]] - {self.qlo}[j]) * {self.qinv}[j];")
        w(f"      q[j] = (v != v) ? {fq.nan_level}u : (v <= 0.0f ? 0u : (v >= {fq.top}.0f ? "
          f"{fq.top}u : ({qt})(v + 0.5f)));")
        w("    }")

    def _cond(self, i: str, v: str) -> str:
        """C condition 'go to kl[i]' for the data layout."""
        ens, fq = self.ens, self.fq
        if fq is not None:
            c = f"{v} <= {self.thr}[{i}]"
            nl = fq.nan_left
            if nl.all():
                c = f"({c} || {v} == {fq.nan_level}u)"
            elif nl.any():
                c = f"({c} || ({v} == {fq.nan_level}u && ({self.flags}[{i}] & 8u)))"
            return c
        th = f"{self.thr}[{i}]"
        modes = sorted(set(ens.mode.tolist()))
        if len(modes) == 1:
            c = f"({v} {C_CMP[modes[0]]} {th})"
        else:
            c = "(" + " || ".join(f"((({self.flags}[{i}] & 7u) == {m}u) && {v} {C_CMP[m]} {th})"
                                  for m in modes) + ")"
        if ens.missing.all():
            c = f"({c} || {v} != {v})"
        elif ens.missing.any():
            c = f"({c} || (({self.flags}[{i}] & 8u) && {v} != {v}))"
        return c

    def _traverse(self, w):
        ens = self.ens
        T = ens.n_trees
        NI = ens.n_internal
        w(f"    for (uint32_t t = 0; t < {T}u; ++t) {{")
        if NI == 0:
            w("      const uint32_t b = 0, ni = 0, r = 0;")
        else:
            if T > 1:
                w(f"      const uint32_t b = {self.base}[t];")
                w(f"      const uint32_t ni = {self.base}[t + 1] - b;")
            else:
                w(f"      const uint32_t b = 0, ni = {NI}u;")
            w("      uint32_t r = 0;")
            w("      while (r < ni) {")
            w("        const uint32_t i = b + r;")
            if self.fq is not None:
                vt = "uint8_t" if self.fq.bits == 8 else "uint16_t"
                w(f"        const {vt} v = q[{self.feat}[i]];")
            else:
                w(f"        const {self.acc} v = ({self.acc})x[{self.feat}[i]];")
            w(f"        r = {self._cond('i', 'v')} ? {self.kl}[i] : {self.kr}[i];")
            w("      }")
        if self.addr == "table":
            w("      const uint32_t leaf = r - ni;")
        else:
            w("      const uint32_t leaf = b + t + (r - ni);")
        w("      (void)b;")
        self._accumulate(w, "leaf", "t", "      ")
        w("    }")

    # code layout
    def _tree_functions(self):
        ens, fq, k = self.ens, self.fq, self.k
        T = ens.n_trees
        max_id = (len(self.uniq) - 1) if self.addr == "table" else ens.n_leaves - 1
        rt = _ctype(_uint(max(max_id, 0))[0])
        self.ret_t = rt
        arg = f"const {'uint8_t' if fq and fq.bits == 8 else 'uint16_t' if fq else self.xt}* x"
        left, right = self.ens.left, self.ens.right
        if fq is not None:
            sw = fq.swapped
            left = np.where(sw, ens.right, ens.left)
            right = np.where(sw, ens.left, ens.right)
        names = []
        for t in range(T):
            b, e = int(ens.node_base[t]), int(ens.node_base[t + 1])
            ni = e - b
            name = k.function(f"tree{t}")
            names.append(name)
            body = []

            def leaf_id(ref):
                glob = b + t + (ref - ni)
                return int(self.leaf_ids[glob]) if self.addr == "table" else glob

            def node(ref, ind):
                if ref >= ni:
                    body.append(f"{ind}return {leaf_id(ref)};")
                    return
                i = b + ref
                body.append(f"{ind}if ({self._code_cond(i)}) {{")
                node(int(left[i]), ind + "  ")
                body.append(f"{ind}}}")
                node(int(right[i]), ind)
            node(0, "  ")
            k.add_function(f"static {rt} {name}({arg})\n{{\n" + "\n".join(body) + "\n}")
        self.tree_fns = names
        table = k.function("trees")
        self.tree_table = table
        k.add_function(f"static {rt} (*const {table}[{T}])({arg}) = {{\n  " +
                       ",\n  ".join(names) + "\n};")
        self.tree_arg = "q" if fq is not None else "x"

    def _code_cond(self, i: int) -> str:
        ens, fq = self.ens, self.fq
        if fq is not None:
            f = int(fq.feature[i])
            c = f"x[{f}] <= {int(fq.qthreshold[i])}u"
            if fq.nan_left[i]:
                c = f"{c} || x[{f}] == {fq.nan_level}u"
            return c
        f = int(ens.feature[i])
        v = f"x[{f}]" if self.xt == self.acc or self.xt in ("float", "double") else f"({self.acc})x[{f}]"
        c = f"{v} {C_CMP[int(ens.mode[i])]} {self.lit(ens.threshold[i])}"
        if ens.missing[i]:
            c = f"{c} || {v} != {v}"
        return c

    def _call_trees(self, w):
        T = self.ens.n_trees
        w(f"    for (uint32_t t = 0; t < {T}u; ++t) {{")
        w(f"      const uint32_t leaf = {self.tree_table}[t]({self.tree_arg});")
        self._accumulate(w, "leaf", "t", "      ")
        w("    }")

    # accumulation
    def _update(self, k: str, val: str) -> list[str]:
        agg = self.ens.aggregate if self.ens.kind == "regressor" else "SUM"
        out = []
        if agg in ("SUM", "AVERAGE"):
            out.append(f"s[{k}] += {val};")
        else:
            op = "<" if agg == "MIN" else ">"
            out.append(f"{{ const {self.acc} w_ = {val}; if (!has[{k}] || w_ {op} s[{k}]) s[{k}] = w_; }}")
        if self.dyn_has:
            out.append(f"has[{k}] = 1;")
        return out

    def _accumulate(self, w, leaf: str, t: str, ind: str):
        lp = self.lp
        if lp.form == "dense":
            tg = lp.targets
            K = len(tg)
            w(f"{ind}const {self.acc}* p = {self.lv} + {leaf} * {K}u;")
            agg_sum = self.ens.kind == "classifier" or self.ens.aggregate in ("SUM", "AVERAGE")
            if list(tg) == list(range(K)) and not self.dyn_has and agg_sum:
                w(f"{ind}for (int k = 0; k < {K}; ++k) s[k] += p[k];")
            else:
                for j, c in enumerate(tg):
                    for line in self._update(str(c), f"p[{j}]"):
                        w(ind + line)
        elif lp.form == "single":
            if lp.target_mode == "const":
                tgt = str(lp.const_target)
            elif lp.target_mode == "tree":
                tgt = f"{self.ttg}[{t}]"
            else:
                tgt = f"{self.ltg}[{leaf}]"
            for line in self._update(tgt, f"{self.lv}[{leaf}]"):
                w(ind + line)
        else:
            w(f"{ind}for (uint32_t j = {self.lptr}[{leaf}]; j < {self.lptr}[{leaf} + 1]; ++j) {{")
            for line in self._update(f"{self.ltg}[j]", f"{self.lv}[j]"):
                w(ind + "  " + line)
            w(f"{ind}}}")

    def _has(self, k: int) -> str:
        if self.dyn_has:
            return f"has[{k}]"
        return "1" if self.lp.always[k] else "0"

    # finalization
    def _post(self, w, arr: str, n: int, ind: str):
        post = self.ens.post_transform
        if post == "NONE":
            return
        self.k.need("ml_post")
        if post == "LOGISTIC":
            w(f"{ind}for (int k = 0; k < {n}; ++k) {arr}[k] = edgec_ml_logistic({arr}[k]);")
        elif post == "PROBIT":
            w(f"{ind}for (int k = 0; k < {n}; ++k) {arr}[k] = edgec_ml_probit({arr}[k]);")
        elif post == "SOFTMAX":
            w(f"{ind}edgec_ml_softmax({arr}, {n});")
        else:
            w(f"{ind}edgec_ml_softmax_zero({arr}, {n});")

    def _finalize_regressor(self, w):
        ens = self.ens
        K = ens.n_outputs
        T = ens.n_trees
        bv = ens.base_values
        lit = self.lit
        y = self.k.y(0)
        w(f"    float* out = {y} + n * {K};")
        if K == 1:
            origin = lit(bv[0]) if len(bv) == 1 else lit(0.0)
            if ens.aggregate == "SUM":
                w(f"    const {self.acc} sc = s[0] + {origin};")
            elif ens.aggregate == "AVERAGE":
                w(f"    const {self.acc} sc = s[0] / ({self.acc}){T} + {origin};")
            else:
                w(f"    const {self.acc} sc = {self._has(0)} ? s[0] + {origin} : {origin};")
            w("    out[0] = (float)sc;")
            if ens.post_transform == "PROBIT":
                self.k.need("ml_post")
                w("    out[0] = edgec_ml_probit(out[0]);")
            return
        use_base = len(bv) == K
        # local tables are named as the layer's symbols (<prefix>_l<N>_bv in the ELF)
        bvs, hss = self.k.function("bv"), self.k.function("hs")
        if use_base:
            w(f"    static const {self.acc} {bvs}[{K}] = {{ " + ", ".join(lit(v) for v in bv) + " };")
        w(f"    for (int k = 0; k < {K}; ++k) {{")
        if ens.aggregate == "SUM":
            e = f"s[k] + {bvs}[k]" if use_base else "s[k]"
        elif ens.aggregate == "AVERAGE":
            e = f"s[k] / ({self.acc}){T}" + (f" + {bvs}[k]" if use_base else "")
        else:
            e = f"{bvs}[k] + s[k]" if use_base else "s[k]"
        h = "has[k]" if self.dyn_has else None
        if h is None and not self.lp.always.all():
            w(f"      static const uint8_t {hss}[{K}] = {{ " +
              ", ".join("1" if a else "0" for a in self.lp.always) + " };")
            h = f"{hss}[k]"
        w(f"      out[k] = {h + ' ? ' if h else ''}(float)({e}){' : 0.0f' if h else ''};")
        w("    }")
        self._post(w, "out", K, "    ")

    def _label_table(self):
        ens = self.ens
        labels = ens.labels if ens.labels is not None else np.arange(ens.n_outputs)
        if np.array_equal(labels, np.arange(len(labels))):
            return None
        return self.k.const(labels, "int64", "labels")

    def _finalize_classifier(self, w):
        ens = self.ens
        C = ens.n_outputs
        bv = ens.base_values
        lit = self.lit
        acc = self.acc
        lab_out, sc_out = self.k.y(0), self.k.y(1)
        tab = []

        def label(expr):
            if not tab:
                tab.append(self._label_table())
            return f"{tab[0]}[{expr}]" if tab[0] else f"(int64_t)({expr})"
        w(f"    float* out = {sc_out} + n * {C};")
        if C > 2:
            nb = min(len(bv), C)
            for kk in range(nb):
                h = self._has(kk)
                if h == "1":
                    w(f"    s[{kk}] += {lit(bv[kk])};")
                elif h == "0":
                    w(f"    s[{kk}] = {lit(bv[kk])};")
                else:
                    w(f"    s[{kk}] = {h} ? s[{kk}] + {lit(bv[kk])} : {lit(bv[kk])};")
            hs = [("1" if kk < nb else self._has(kk)) for kk in range(C)]
            if self.dyn_has:
                for kk in range(nb):
                    w(f"    has[{kk}] = 1;")
                hs = [f"has[{kk}]" for kk in range(C)]
            if all(h == "1" for h in hs):
                w("    int best = 0;")
                w(f"    for (int k = 1; k < {C}; ++k) if (s[k] > s[best]) best = k;")
                w(f"    {lab_out}[n] = {label('best')};")
                w(f"    for (int k = 0; k < {C}; ++k) out[k] = (float)s[k];")
            else:
                has = "has"
                if not self.dyn_has:
                    has = self.k.function("has")   # a layer's symbol (<prefix>_l<N>_has)
                    w(f"    static const uint8_t {has}[{C}] = {{ " + ", ".join(hs) + " };")
                w("    int best = -1;")
                w(f"    for (int k = 0; k < {C}; ++k) if ({has}[k] && (best < 0 || s[k] > s[best])) best = k;")
                w("    if (best < 0) best = 0;")
                w(f"    {lab_out}[n] = {label('best')};")
                w(f"    for (int k = 0; k < {C}; ++k) out[k] = {has}[k] ? (float)s[k] : 0.0f;")
            self._post(w, "out", C, "    ")
            return
        # binary (onnxruntime's rules, see trees.finalize_classifier)
        post = ens.post_transform
        w(f"    {acc} s0 = s[0], s1 = s[1];")
        w(f"    const int h0 = {self._has(0)}, h1 = {self._has(1)};")
        w("    int two = 1;")
        if len(bv) == 2:
            w(f"    if (h1) {{ s1 = {lit(bv[1])} + s0; s0 = -s1; }}")
            w(f"    else {{ s1 = s1 + {lit(bv[1])}; s0 = s0 + {lit(bv[0])}; }}")
        elif len(bv) == 1:
            w(f"    s0 = s0 + {lit(bv[0])};")
            w("    if (!h1) two = 0;")
        elif len(bv) == 0:
            w("    if (!h1) two = 0;")
        w(f"    const {acc} pos = (two && h1) ? s1 : (h0 ? s0 : ({acc})0);")
        if ens.binary_case:
            cut = lit(0.5) if ens.all_positive else lit(0.0)
            w(f"    {lab_out}[n] = pos > {cut} ? {label(1)} : {label(0)};")
            was = "pos" if ens.all_positive else "neg"
        else:
            w(f"    {lab_out}[n] = pos > ({acc})0 ? 1 : 0;")
            was = "none" if len(bv) else "neg"
        w("    const float v0 = h0 ? (float)s0 : 0.0f;")
        w("    if (two) {")
        w("      out[0] = v0;")
        w("      out[1] = h1 ? (float)s1 : 0.0f;")
        self._post(w, "out", 2, "      ")
        w("    } else {")
        if post == "PROBIT":
            self.k.need("ml_post")
            w("      out[0] = edgec_ml_probit(v0);")
            w("      out[1] = 0.0f;  /* onnxruntime leaves it unwritten */")
        elif was == "pos":
            w("      out[0] = 1.0f - v0;")
            w("      out[1] = v0;")
        elif was == "neg":
            if post == "LOGISTIC":
                self.k.need("ml_post")
                w("      out[0] = edgec_ml_logistic(-v0);")
                w("      out[1] = edgec_ml_logistic(v0);")
            else:
                w("      out[0] = -v0;")
                w("      out[1] = v0;")
        else:
            w("      out[0] = v0;")
            w("      out[1] = 0.0f;  /* onnxruntime leaves it unwritten */")
        w("    }")


def emit_tree_ensemble(k) -> str:
    return _Gen(k).emit()
