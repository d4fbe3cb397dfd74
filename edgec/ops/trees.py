"""Tree ensembles: ``ai.onnx.ml`` TreeEnsembleClassifier / TreeEnsembleRegressor
(opsets 1 and 3) and TreeEnsemble (opset 5), as one IR op ``TreeEnsemble``.

The importers normalize every attribute variant converters emit (``nodes_*``
lists, ``*_as_tensor`` doubles, membership sets, ``tree_roots`` with leaf
flags, string or int64 class labels) into an :class:`Ensemble`: per tree, its
internal nodes in preorder (root first) with feature, threshold, branch mode
and missing-value direction, two child references, and the leaves' weights.

Semantics follow onnxruntime (the reference runtime edgec verifies against),
including its corner cases, which the numpy reference here reproduces:

* scores accumulate tree by tree in the threshold type (float32, or float64
  when the thresholds/weights come as double tensors), then ``AVERAGE``
  divides by the number of trees, base values are added, the post transform
  runs in float32 and the result is stored as float32;
* a target or class no reached leaf has a weight for reads as 0 (its base
  value is added only where onnxruntime adds it);
* one-target regressors use only the first weight of a leaf and apply only
  ``PROBIT`` (onnxruntime ignores LOGISTIC/SOFTMAX with one target);
* binary classifiers follow onnxruntime's ``binary_case`` rules: one class
  with weights gives scores ``[1 - s, s]`` (all weights positive, label
  ``s > 0.5``) or ``[-s, s]`` / ``[logistic(-s), logistic(s)]`` (label ``s > 0``);
* the tree roots are the first node of every run of equal tree ids.

IR ``TreeEnsemble``: input ``X`` ``[N, F]`` (or ``[F]``; float32, float64,
int32, int64); outputs ``label`` int64 ``[N]`` and ``scores`` float32 ``[N, C]``
for classifiers, ``Y`` float32 ``[N, T]`` for regressors.  ``attrs['ensemble']``
holds the :class:`Ensemble`; ``attrs['fq']`` (set by the tree-feature
quantization pass) holds integer features and thresholds.  String class
labels become their indices; the label table is in the graph's
``meta.labels`` and the generated header.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..data import feature_levels
from ..ir.errors import EdgecError, UnsupportedError
from . import OutSpec, Op, onnx_op, register
from ._trees_c import C_CMP, emit_tree_ensemble  # noqa: F401 (C_CMP: re-exported)

MODES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ")
LEQ, LT, GTE, GT, EQ, NEQ = range(6)
MEMBER = 6                      # TreeEnsemble (opset 5) only: unrolled into EQ chains
POSTS = ("NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT")
AGGREGATES = ("SUM", "AVERAGE", "MIN", "MAX")

# Largest ensemble edgec accepts (internal nodes after expanding shared subtrees).
MAX_NODES = 1 << 24


@dataclass
class Ensemble:
    kind: str                    # "classifier" | "regressor"
    n_outputs: int               # classes (classifier) or targets (regressor)
    tdtype: str                  # "float32" | "float64": thresholds, weights, accumulators
    node_base: np.ndarray        # int64 [T+1]: tree t's internal nodes are node_base[t]..node_base[t+1]-1
    feature: np.ndarray          # int64 [NI]
    threshold: np.ndarray        # float64 [NI] (values of tdtype)
    mode: np.ndarray             # uint8 [NI] (LEQ..NEQ)
    missing: np.ndarray          # bool [NI]: NaN takes the true branch
    left: np.ndarray             # int64 [NI]: tree-local ref of the true child
    right: np.ndarray            # int64 [NI]: tree-local ref of the false child
    # A tree-local ref r < ni (ni = internal nodes of the tree) is internal node
    # node_base[t] + r; r >= ni is the tree's leaf r - ni, globally leaf
    # node_base[t] + t + (r - ni) (a binary tree has one leaf more than internal nodes).
    leaf_ptr: np.ndarray         # int64 [NL+1]: CSR of the leaves' weights
    leaf_target: np.ndarray      # int64 [W]
    leaf_value: np.ndarray       # float64 [W] (values of tdtype)
    aggregate: str = "SUM"
    post_transform: str = "NONE"
    base_values: np.ndarray = field(default_factory=lambda: np.zeros(0))   # float64, tdtype values
    labels: np.ndarray | None = None          # int64 [C] (classifier)
    label_strings: tuple | None = None        # classifier with string labels (labels = indices)
    binary_case: bool = False
    all_positive: bool = True
    n_features: int = 0                       # max feature id + 1
    notes: list = field(default_factory=list)

    @property
    def n_trees(self) -> int:
        return len(self.node_base) - 1

    @property
    def n_internal(self) -> int:
        return int(self.node_base[-1])

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_ptr) - 1

    def tree_sizes(self) -> np.ndarray:
        return np.diff(self.node_base)

    def leaf_of(self, t: int, ref: int) -> int:
        b, e = int(self.node_base[t]), int(self.node_base[t + 1])
        return b + t + (ref - (e - b))

    def max_depth(self) -> int:
        best = 0
        for t in range(self.n_trees):
            b = int(self.node_base[t])
            ni = int(self.node_base[t + 1]) - b
            depth = np.zeros(max(ni, 1), np.int64)
            for r in range(ni):     # preorder: parents come before children
                for c in (self.left[b + r], self.right[b + r]):
                    if c < ni:
                        depth[c] = depth[r] + 1
            best = max(best, int(depth.max()) + 1 if ni else 0)
        return best

    def summary(self) -> dict:
        d = {"kind": self.kind, "trees": self.n_trees, "internal_nodes": self.n_internal,
             "leaves": self.n_leaves, "outputs": self.n_outputs, "threshold_type": self.tdtype,
             "aggregate": self.aggregate, "post_transform": self.post_transform,
             "input_features": self.n_features}
        if self.label_strings is not None:
            d["labels"] = list(self.label_strings)
        elif self.labels is not None:
            d["labels"] = [int(v) for v in self.labels]
        return d


@dataclass
class FeatureQuant:
    """Integer features for an ensemble (``--tree-features int8|int16``).

    Per used feature u (original index ``used[u]``): ``level(x) = clamp(floor((float(x) -
    lo[u]) * inv[u] + 0.5), 0, top)`` in float32 arithmetic, NaN -> ``nan_level``
    (above every threshold).  Every internal node becomes "go to the left child iff
    ``level <= qthreshold`` (or the level is NaN and ``nan_left``)", where the left
    child is the true child, or the false one when ``swapped`` (GTE/GT nodes)."""
    bits: int
    used: np.ndarray          # int64 [U]
    lo: np.ndarray            # float32 [U]
    inv: np.ndarray           # float32 [U]
    feature: np.ndarray       # int64 [NI]: index into used
    qthreshold: np.ndarray    # int64 [NI]
    swapped: np.ndarray       # bool [NI]
    nan_left: np.ndarray      # bool [NI]
    stats: dict = field(default_factory=dict)
    # The ensemble's input already holds the levels (``--quantized-input``): ``used``
    # is every feature and ``feature`` the original feature ids.
    direct: bool = False

    @property
    def top(self) -> int:
        return (1 << self.bits) - 2

    @property
    def nan_level(self) -> int:
        return (1 << self.bits) - 1

    def levels(self, X: np.ndarray) -> np.ndarray:
        """[N, U] levels of the used features of rows ``X`` (:func:`edgec.data.feature_levels`)."""
        X = np.asarray(X)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        return feature_levels(X[:, self.used], self.lo, self.inv, self.bits)


def build(kind: str, *, treeids, nodeids, featureids, modes, values, truenodeids, falsenodeids,
          missing, w_treeids, w_nodeids, w_ids, w_values, n_outputs: int, tdtype: str,
          aggregate: str = "SUM", post_transform: str = "NONE", base_values=(),
          labels=None, label_strings=None) -> Ensemble:
    """An :class:`Ensemble` from the flat ``nodes_*`` / weight lists of the opset 1/3
    operators (``modes`` as codes 0..5 or -1 for LEAF)."""
    n = len(treeids)
    for name, arr in (("nodes_nodeids", nodeids), ("nodes_featureids", featureids),
                      ("nodes_modes", modes), ("nodes_values", values),
                      ("nodes_truenodeids", truenodeids), ("nodes_falsenodeids", falsenodeids)):
        if len(arr) != n:
            raise EdgecError(f"{name} has {len(arr)} entries, nodes_treeids {n}")
    nw = len(w_ids)
    for name, arr in (("weight tree ids", w_treeids), ("weight node ids", w_nodeids),
                      ("weights", w_values)):
        if len(arr) != nw:
            raise EdgecError(f"{name}: {len(arr)} entries where the ids have {nw}")
    if n == 0:
        raise EdgecError("the tree ensemble has no nodes")
    if n_outputs <= 0:
        raise EdgecError("the tree ensemble has no targets or classes")
    if tdtype not in ("float32", "float64"):
        raise EdgecError(f"bad threshold type {tdtype}")
    treeids = np.asarray(treeids, np.int64)
    nodeids = np.asarray(nodeids, np.int64)
    featureids = np.asarray(featureids, np.int64)
    modes = np.asarray(modes, np.int64)
    values = np.asarray(values, np.float64)
    truenodeids = np.asarray(truenodeids, np.int64)
    falsenodeids = np.asarray(falsenodeids, np.int64)
    miss = np.zeros(n, bool)
    if missing is not None and len(missing):
        m = np.asarray(missing, np.int64)[:n]
        miss[:len(m)] = m == 1
    is_leaf = modes < 0
    if np.any(featureids[~is_leaf] < 0):
        raise EdgecError("a tree node has a negative feature id")

    if np.any(nodeids < 0) or np.any(nodeids >= (1 << 31)):
        raise EdgecError("tree node ids must be in 0..2^31-1")
    # (tree, node) -> position, vectorized: dense tree ranks times a node stride
    utrees, trank = np.unique(treeids, return_inverse=True)
    stride = int(nodeids.max()) + 1
    keys = trank.astype(np.int64) * stride + nodeids
    korder = np.argsort(keys, kind="stable")
    skeys = keys[korder]
    dup = np.nonzero(np.diff(skeys) == 0)[0]
    if dup.size:
        i = int(korder[dup[0]])
        raise EdgecError(f"node {int(nodeids[i])} of tree {int(treeids[i])} is defined twice")

    def lookup(tids, nids, what):
        tids = np.asarray(tids, np.int64)
        nids = np.asarray(nids, np.int64)
        tr = np.searchsorted(utrees, tids)
        ok = (tr < len(utrees)) & (nids >= 0) & (nids < stride)
        ok[ok] = utrees[tr[ok]] == tids[ok]
        k = np.where(ok, np.clip(tr, 0, len(utrees) - 1) * stride + np.clip(nids, 0, stride - 1), -1)
        pos = np.searchsorted(skeys, k)
        pos = np.clip(pos, 0, len(skeys) - 1)
        ok &= skeys[pos] == k
        if not ok.all():
            j = int(np.nonzero(~ok)[0][0])
            raise EdgecError(f"{what} refers to node {int(nids[j])} of tree {int(tids[j])}, "
                             "which does not exist")
        return korder[pos]

    # weights per leaf, in (tree, node, position) order as onnxruntime sorts them
    w_treeids = np.asarray(w_treeids, np.int64)
    w_nodeids = np.asarray(w_nodeids, np.int64)
    w_ids = np.asarray(w_ids, np.int64)
    w_values = np.asarray(w_values, np.float64)
    w_ids_all, w_values_all = w_ids, w_values
    widx = lookup(w_treeids, w_nodeids, "a weight") if nw else np.zeros(0, np.int64)
    on_leaf = is_leaf[widx]
    ignored = int(np.count_nonzero(~on_leaf))      # onnxruntime ignores weights on branch nodes
    widx, w_ids, w_values = widx[on_leaf], w_ids[on_leaf], w_values[on_leaf]
    bad = (w_ids < 0) | (w_ids >= n_outputs)
    if bad.any():
        raise EdgecError(f"a leaf weight is for target/class {int(w_ids[bad][0])}, "
                         f"outside 0..{n_outputs - 1}")
    worder = np.lexsort((np.arange(len(widx)), widx))
    w_t = w_ids[worder]
    w_v = w_values[worder]
    wcount = np.bincount(widx, minlength=n)
    wstart = np.concatenate([[0], np.cumsum(wcount)])[:-1]

    # roots: the first node of every run of equal tree ids (onnxruntime's rule)
    roots = np.concatenate([[0], np.nonzero(treeids[1:] != treeids[:-1])[0] + 1]).tolist()

    branch = np.nonzero(~is_leaf)[0]
    tkid = np.zeros(n, np.int64)
    fkid = np.zeros(n, np.int64)
    if branch.size:
        tkid[branch] = lookup(treeids[branch], truenodeids[branch], f"node (true branch)")
        fkid[branch] = lookup(treeids[branch], falsenodeids[branch], f"node (false branch)")
        selfp = (tkid[branch] == branch) | (fkid[branch] == branch)
        if selfp.any():
            i = int(branch[selfp][0])
            raise EdgecError(f"node {int(nodeids[i])} of tree {int(treeids[i])} points to itself")
        indeg = np.bincount(np.concatenate([tkid[branch], fkid[branch]]), minlength=n)
        if indeg.max() > 1 or indeg[roots].any():
            # shared children: make sure there is no cycle (subtrees get duplicated)
            _check_acyclic({int(i): (int(tkid[i]), int(fkid[i])) for i in branch}, n)

    feat_idx, left, right, base = [], [], [], [0]
    leaf_nodes = []
    total = 0
    leaf_flag = is_leaf.tolist()
    tk, fk = tkid.tolist(), fkid.tolist()
    for root in roots:
        # preorder expansion (shared subtrees are duplicated); leaf refs are
        # stored as -(local leaf + 1) and fixed once the tree's size is known
        start = len(feat_idx)
        n_leaf = 0
        stack = [(root, -1, 0)]
        while stack:
            i, parent, side = stack.pop()
            if leaf_flag[i]:
                ref = -(n_leaf + 1)
                leaf_nodes.append(i)
                n_leaf += 1
            else:
                ref = len(feat_idx) - start
                total += 1
                if total > MAX_NODES:
                    raise EdgecError(f"the tree ensemble has more than {MAX_NODES} nodes")
                feat_idx.append(i)
                left.append(0)
                right.append(0)
                me = len(feat_idx) - 1
                stack.append((fk[i], me, 1))
                stack.append((tk[i], me, 0))
            if parent >= 0:
                (right if side else left)[parent] = ref
        ni = len(feat_idx) - start
        if n_leaf != ni + 1:
            raise AssertionError("tree expansion lost a leaf")
        base.append(len(feat_idx))
    feat_idx = np.asarray(feat_idx, np.int64)
    left = np.asarray(left, np.int64)
    right = np.asarray(right, np.int64)
    base_arr = np.asarray(base, np.int64)
    # leaf refs -> ni + local leaf index
    ni_of = np.repeat(np.diff(base_arr), np.diff(base_arr))
    left = np.where(left < 0, ni_of - left - 1, left)
    right = np.where(right < 0, ni_of - right - 1, right)
    leaf_nodes = np.asarray(leaf_nodes, np.int64)
    cnt = wcount[leaf_nodes]
    if np.any(cnt == 0):
        raise EdgecError(f"{int(np.count_nonzero(cnt == 0))} leaves have no weight "
                         "(onnxruntime refuses such a model too)")
    leaf_ptr = np.concatenate([[0], np.cumsum(cnt)])
    gather = np.repeat(wstart[leaf_nodes] - leaf_ptr[:-1], cnt) + np.arange(int(leaf_ptr[-1]))
    leaf_target = w_t[gather]
    leaf_value = w_v[gather]
    feat = featureids[feat_idx]
    thr = values[feat_idx]
    mode = modes[feat_idx]
    mis = miss[feat_idx]
    base = base_arr

    cast = np.float32 if tdtype == "float32" else np.float64
    ens = Ensemble(
        kind=kind, n_outputs=int(n_outputs), tdtype=tdtype,
        node_base=base,
        feature=np.asarray(feat, np.int64),
        threshold=np.asarray(thr, np.float64).astype(cast).astype(np.float64),
        mode=np.asarray(mode, np.uint8), missing=np.asarray(mis, bool),
        left=np.asarray(left, np.int64), right=np.asarray(right, np.int64),
        leaf_ptr=np.asarray(leaf_ptr, np.int64), leaf_target=np.asarray(leaf_target, np.int64),
        leaf_value=np.asarray(leaf_value, np.float64).astype(cast).astype(np.float64),
        aggregate=aggregate, post_transform=post_transform,
        base_values=np.asarray(base_values, np.float64).astype(cast).astype(np.float64),
        labels=None if labels is None else np.asarray(labels, np.int64),
        label_strings=None if label_strings is None else tuple(label_strings),
    )
    ens.n_features = int(ens.feature.max()) + 1 if len(ens.feature) else 0
    if ignored:
        ens.notes.append(f"{ignored} weights on branch nodes ignored (as onnxruntime does)")
    if kind == "classifier":
        # onnxruntime looks at every weight here, branch-attached ones included
        classes = set(w_ids_all.tolist())
        ens.binary_case = ens.n_outputs == 2 and len(classes) == 1
        ens.all_positive = bool(np.all(w_values_all >= 0)) if nw else True
    return ens


def _check_acyclic(kids: dict[int, tuple[int, int]], n: int) -> None:
    state = np.zeros(n, np.int8)    # 0 new, 1 on the path, 2 done
    for s in kids:
        if state[s]:
            continue
        stack = [(s, 0)]
        state[s] = 1
        while stack:
            i, k = stack.pop()
            ch = kids.get(i, ())
            if k < len(ch):
                stack.append((i, k + 1))
                c = ch[k]
                if state[c] == 1:
                    raise EdgecError("a tree of the ensemble has a cycle")
                if state[c] == 0 and c in kids:
                    state[c] = 1
                    stack.append((c, 0))
                elif state[c] == 0:
                    state[c] = 2
            else:
                state[i] = 2


# --- reference ---------------------------------------------------------------

def _compare(x: np.ndarray, t: np.ndarray, mode: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.select([mode == LEQ, mode == LT, mode == GTE, mode == GT, mode == EQ],
                         [x <= t, x < t, x >= t, x > t, x == t], x != t)


def leaf_indices(ens: Ensemble, X: np.ndarray, fq=None) -> np.ndarray:
    """Global leaf reached by every row of X [N, F] in every tree: int64 [N, T]."""
    N = X.shape[0]
    T = ens.n_trees
    out = np.zeros((N, T), np.int64)
    if fq is not None:
        q = X.astype(np.int64) if fq.direct else fq.levels(X)     # [N, U] levels
        thr_q = fq.qthreshold
    else:
        xt = X.astype(np.float32 if ens.tdtype == "float32" else np.float64)
    rows = np.arange(N)
    for t in range(T):
        b = int(ens.node_base[t])
        ni = int(ens.node_base[t + 1]) - b
        r = np.zeros(N, np.int64)
        act = r < ni
        while act.any():
            ar = rows[act]
            i = b + r[act]
            if fq is None:
                v = xt[ar, ens.feature[i]]
                cond = _compare(v, ens.threshold[i].astype(v.dtype), ens.mode[i])
                cond |= ens.missing[i] & np.isnan(v)
            else:
                v = q[ar, fq.feature[i]]
                cond = v <= thr_q[i]
                cond |= fq.nan_left[i] & (v == fq.nan_level)
                cond ^= fq.swapped[i]
            r[act] = np.where(cond, ens.left[i], ens.right[i])
            act = r < ni
        out[:, t] = b + t + (r - ni)
    return out


def _f32(x):
    return np.asarray(x, np.float32)


def ort_logistic(x):
    x = _f32(x)
    with np.errstate(over="ignore"):
        v = np.float32(1) / (np.float32(1) + np.exp(-np.abs(x)))
    return np.where(x < 0, np.float32(1) - v, v).astype(np.float32)


def ort_probit(x):
    x = _f32(x)
    v = np.float32(2) * x - np.float32(1)
    sgn = np.where(v < 0, np.float32(-1), np.float32(1)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = (np.float32(1) - v) * (np.float32(1) + v)
        lg = np.log(w)
        a = np.float32(2) / (np.float32(math.pi) * np.float32(0.147)) + np.float32(0.5) * lg
        a2 = (np.float32(1) / np.float32(0.147)) * lg
        a3 = -a + np.sqrt(a * a - a2)
        r = sgn * np.sqrt(a3)
    return (np.float32(math.sqrt(2)) * r).astype(np.float32)


def ort_softmax(s):
    s = _f32(s)
    vmax = np.maximum(s.max(axis=-1, keepdims=True), np.float32(-3.4028235e38))
    with np.errstate(over="ignore"):
        e = np.exp(s - vmax).astype(np.float32)
    tot = np.zeros(s.shape[:-1] + (1,), np.float32)
    for k in range(s.shape[-1]):
        tot[..., 0] += e[..., k]
    return (e / tot).astype(np.float32)


def ort_softmax_zero(s):
    s = _f32(s)
    vmax = np.maximum(s.max(axis=-1, keepdims=True), np.float32(-3.4028235e38))
    with np.errstate(over="ignore"):
        eneg = np.exp(-vmax).astype(np.float32)
        nz = (s > np.float32(1e-7)) | (s < np.float32(-1e-7))
        e = np.where(nz, np.exp(s - vmax), s * eneg).astype(np.float32)
    tot = np.zeros(s.shape[:-1] + (1,), np.float32)
    for k in range(s.shape[-1]):
        tot[..., 0] += np.where(nz[..., k], e[..., k], np.float32(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (e / tot).astype(np.float32)


def post_transform(name: str, s):
    if name == "LOGISTIC":
        return ort_logistic(s)
    if name == "SOFTMAX":
        return ort_softmax(s)
    if name == "SOFTMAX_ZERO":
        return ort_softmax_zero(s)
    if name == "PROBIT":
        return ort_probit(s)
    return _f32(s)


def accumulate(ens: Ensemble, leaves: np.ndarray):
    """Scores [N, K] (tdtype) and has-score flags after all trees (onnxruntime's order)."""
    N = leaves.shape[0]
    K = ens.n_outputs
    acc = np.float32 if ens.tdtype == "float32" else np.float64
    one = ens.kind == "regressor" and K == 1
    s = np.zeros((N, K), acc)
    has = np.zeros((N, K), bool)
    ptr, tg, val = ens.leaf_ptr, ens.leaf_target, ens.leaf_value.astype(acc)
    rows = np.arange(N)
    agg = ens.aggregate if ens.kind == "regressor" else "SUM"
    for t in range(ens.n_trees):
        lf = leaves[:, t]
        cnt = ptr[lf + 1] - ptr[lf]
        if one:
            cnt = np.minimum(cnt, 1)
        for j in range(int(cnt.max(initial=0))):
            m = cnt > j
            rr = rows[m]
            w = ptr[lf[m]] + j
            k = np.zeros(len(rr), np.int64) if one else tg[w]
            v = val[w]
            if agg in ("SUM", "AVERAGE"):
                s[rr, k] = s[rr, k] + v
            elif agg == "MIN":
                cur = s[rr, k]
                s[rr, k] = np.where(~has[rr, k] | (v < cur), v, cur)
            else:
                cur = s[rr, k]
                s[rr, k] = np.where(~has[rr, k] | (v > cur), v, cur)
            has[rr, k] = True
    return s, has


def finalize_regressor(ens: Ensemble, s, has):
    acc = s.dtype.type
    K = ens.n_outputs
    bv = ens.base_values.astype(s.dtype)
    T = ens.n_trees
    agg = ens.aggregate
    if K == 1:
        origin = bv[0] if len(bv) == 1 else acc(0)
        sc = s[:, 0]
        if agg == "SUM":
            sc = sc + origin
        elif agg == "AVERAGE":
            sc = sc / acc(T) + origin
        else:
            sc = np.where(has[:, 0], sc + origin, origin)
        y = _f32(sc)
        if ens.post_transform == "PROBIT":
            y = ort_probit(y)
        return [y.reshape(-1, 1)]
    use_base = len(bv) == K
    if agg == "SUM":
        sc = s + bv if use_base else s
        v = np.where(has, sc, 0)
    elif agg == "AVERAGE":
        sc = s / acc(T) + bv if use_base else s / acc(T)
        v = np.where(has, sc, 0)
    else:
        b = bv if use_base else np.zeros(K, s.dtype)
        v = b + np.where(has, s, 0)          # onnxruntime keeps has_score as it was
        v = np.where(has, v, 0)
    return [post_transform(ens.post_transform, v.astype(s.dtype))]


def finalize_classifier(ens: Ensemble, s, has):
    """(labels as indices into ens.labels or literal 0/1, scores float32 [N, C])."""
    N, C = s.shape
    acc = s.dtype.type
    bv = ens.base_values.astype(s.dtype)
    s = s.copy()
    has = has.copy()
    post = ens.post_transform
    labels = ens.labels if ens.labels is not None else np.arange(C)
    if C > 2:
        for k in range(min(len(bv), C)):
            s[:, k] = np.where(has[:, k], s[:, k] + bv[k], bv[k])
            has[:, k] = True
        masked = np.where(has, s, -np.inf if acc is np.float64 else np.float32(-np.inf))
        idx = np.zeros(N, np.int64)
        best = np.full(N, -1, np.int64)
        for k in range(C):
            better = has[:, k] & ((best < 0) | (s[:, k] > masked[np.arange(N), np.maximum(best, 0)]))
            best = np.where(better, k, best)
        idx = np.maximum(best, 0)
        lab = labels[idx]
        v = np.where(has, s, 0).astype(s.dtype)
        return [lab.astype(np.int64), post_transform(post, v)]
    if C == 1:
        raise UnsupportedError(["TreeEnsembleClassifier with a single class"])
    # binary
    out_lab = np.zeros(N, np.int64)
    out = np.zeros((N, 2), np.float32)
    for n in range(N):
        s0, s1 = s[n, 0], s[n, 1]
        h0, h1 = bool(has[n, 0]), bool(has[n, 1])
        was = -1
        size = 2
        if len(bv) == 2:
            if h1:
                s1 = acc(bv[1] + s0)
                s0 = acc(-s1)
            else:
                s1 = acc(s1 + bv[1])
                s0 = acc(s0 + bv[0])
        elif len(bv) == 1:
            s0 = acc(s0 + bv[0])
            if not h1:
                size = 1
        elif len(bv) == 0:
            was = 3
            if not h1:
                size = 1
        if size == 2 and h1:
            pos = s1
        else:
            pos = s0 if h0 else acc(0)
        if ens.binary_case:
            if ens.all_positive:
                if pos > 0.5:
                    was, lab = 0, labels[1]
                else:
                    was, lab = 1, labels[0]
            else:
                if pos > 0:
                    was, lab = 2, labels[1]
                else:
                    was, lab = 3, labels[0]
        else:
            lab = 1 if pos > 0 else 0
        out_lab[n] = lab
        v0 = np.float32(s0 if h0 else 0)
        if size == 2:
            v1 = np.float32(s1 if h1 else 0)
            out[n] = post_transform(post, np.array([v0, v1], np.float32)) if post != "NONE" \
                else (v0, v1)
        elif post == "PROBIT":
            out[n, 0] = ort_probit(v0)
        elif was in (0, 1):
            out[n] = (np.float32(1) - v0, v0)
        elif was in (2, 3):
            if post == "LOGISTIC":
                out[n] = (ort_logistic(-v0), ort_logistic(v0))
            else:
                out[n] = (-v0, v0)
        else:
            out[n, 0] = v0
    return [out_lab, out]


def evaluate(ens: Ensemble, X: np.ndarray, fq=None):
    """The op's outputs for X [N, F] (see the module doc)."""
    X = np.asarray(X)
    if X.ndim == 1:
        X = X.reshape(1, -1)
    leaves = leaf_indices(ens, X, fq)
    s, has = accumulate(ens, leaves)
    if ens.kind == "regressor":
        return finalize_regressor(ens, s, has)
    return finalize_classifier(ens, s, has)


# --- the IR op -----------------------------------------------------------------

def _rows(x_shape) -> tuple[int, int]:
    if len(x_shape) == 1:
        return 1, int(x_shape[0])
    if len(x_shape) == 2:
        return int(x_shape[0]), int(x_shape[1])
    raise EdgecError(f"tree ensembles take [N, F] or [F] inputs, got {list(x_shape)}")


@register
class TreeEnsemble(Op):
    name = "TreeEnsemble"

    def infer(self, g, n):
        ens: Ensemble = n.attrs["ensemble"]
        x = g.tensors[n.inputs[0]]
        N, F = _rows(x.shape)
        fq = n.attrs.get("fq")
        levels = ("uint8", "uint16") if fq is not None and fq.direct else ()
        if x.dtype not in ("float32", "float64", "int32", "int64") + levels:
            raise UnsupportedError([f"TreeEnsemble[{x.dtype}]"])
        if ens.n_features > F:
            raise EdgecError(f"the trees read feature {ens.n_features - 1}, the input has {F}")
        if ens.kind == "classifier":
            if ens.n_outputs < 2:
                raise UnsupportedError(["TreeEnsembleClassifier with a single class"])
            return [OutSpec((N,), "int64"), OutSpec((N, ens.n_outputs), "float32")]
        return [OutSpec((N, ens.n_outputs), "float32")]

    def reference(self, g, n, xs):
        ens: Ensemble = n.attrs["ensemble"]
        return evaluate(ens, xs[0], n.attrs.get("fq"))

    def macs(self, g, n):
        return 0

    def check(self, g, n):
        return None

    def emit(self, k):
        return emit_tree_ensemble(k)


# --- importers -------------------------------------------------------------------

def _raw_attr(node, name):
    for a in node.attribute:
        if a.name == name:
            return a
    return None


def _list(ctx, node, name, default=()):
    """An INTS/FLOATS/STRINGS attribute as a numpy array (strings: a list), fast for
    the million-entry lists of large forests."""
    from onnx import AttributeProto
    a = ctx.raw_attr(node, name)
    if a is None:
        return np.asarray(list(default))
    if a.type == AttributeProto.INTS:
        return np.array(a.ints, dtype=np.int64)
    if a.type == AttributeProto.FLOATS:
        return np.array(a.floats, dtype=np.float32)
    if a.type == AttributeProto.STRINGS:
        return [x.decode("utf-8", "replace") for x in a.strings]
    v = ctx.attr(node, name)
    return np.asarray(v).reshape(-1) if v is not None else np.asarray(list(default))


def _tensor_attr(ctx, node, name):
    """A ``*_as_tensor`` attribute: (float64 values, is_double) or None."""
    v = ctx.attr(node, name)
    if v is None:
        return None
    a = np.asarray(v)
    if a.ndim != 1 or a.size == 0:
        raise EdgecError(f"{name} must be a non-empty vector")
    return a.astype(np.float64), a.dtype == np.float64


def _either(ctx, node, plain: str, tensor: str, required: bool):
    t = _tensor_attr(ctx, node, tensor)
    has_plain = _raw_attr(node, plain) is not None
    p = _list(ctx, node, plain) if has_plain else None
    if t is not None and p is not None and len(p):
        raise EdgecError(f"both {plain} and {tensor} are given")
    if t is not None:
        return t
    if p is None:
        if required:
            raise EdgecError(f"missing attribute {plain}")
        return np.zeros(0), False
    return np.asarray(p, np.float32).astype(np.float64), False


def _modes(strings) -> np.ndarray:
    codes = {m: i for i, m in enumerate(MODES)}
    codes["LEAF"] = -1
    try:
        return np.array([codes[s] for s in strings], np.int64)
    except KeyError:
        bad = next(s for s in strings if s not in codes)
        raise EdgecError(f"unknown tree node mode {str(bad)[:40]!r}") from None


def _name(v, table, what) -> str:
    v = v.decode() if isinstance(v, bytes) else str(v)
    if v not in table:
        raise EdgecError(f"unknown {what} {v[:40]!r}")
    return v


def _import_v3(ctx, node, classifier: bool) -> Ensemble:
    if ctx.has_attr(node, "nodes_hitrates") or ctx.has_attr(node, "nodes_hitrates_as_tensor"):
        pass        # hit rates do not change predictions
    values, vdouble = _either(ctx, node, "nodes_values", "nodes_values_as_tensor", True)
    prefix = "class" if classifier else "target"
    weights, wdouble = _either(ctx, node, f"{prefix}_weights", f"{prefix}_weights_as_tensor", False)
    base, bdouble = _either(ctx, node, "base_values", "base_values_as_tensor", False)
    xdt = ctx.t(ctx.inp(node, 0)).dtype
    # onnxruntime keeps thresholds, weights and sums in double for double inputs
    tdtype = "float64" if (vdouble or wdouble or bdouble or xdt == "float64") else "float32"
    post = _name(ctx.attr(node, "post_transform", "NONE"), POSTS, "post_transform")
    labels = strings = None
    if classifier:
        strings = ctx.attr(node, "classlabels_strings")
        ints = ctx.attr(node, "classlabels_int64s")
        if strings:
            strings = [s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s) for s in strings]
            labels = np.arange(len(strings), dtype=np.int64)
            n_out = len(strings)
        elif ints is not None and len(ints):
            labels = np.asarray(list(ints), np.int64)
            n_out = len(labels)
            strings = None
        else:
            raise EdgecError("TreeEnsembleClassifier without class labels")
        aggregate = "SUM"
    else:
        n_out = int(ctx.attr(node, "n_targets", 0) or 0)
        aggregate = _name(ctx.attr(node, "aggregate_function", "SUM"), AGGREGATES, "aggregate_function")
    ens = build(
        "classifier" if classifier else "regressor",
        treeids=_list(ctx, node, "nodes_treeids"), nodeids=_list(ctx, node, "nodes_nodeids"),
        featureids=_list(ctx, node, "nodes_featureids"),
        modes=_modes(_list(ctx, node, "nodes_modes")), values=values,
        truenodeids=_list(ctx, node, "nodes_truenodeids"),
        falsenodeids=_list(ctx, node, "nodes_falsenodeids"),
        missing=_list(ctx, node, "nodes_missing_value_tracks_true"),
        w_treeids=_list(ctx, node, f"{prefix}_treeids"), w_nodeids=_list(ctx, node, f"{prefix}_nodeids"),
        w_ids=_list(ctx, node, f"{prefix}_ids"), w_values=weights,
        n_outputs=n_out, tdtype=tdtype, aggregate=aggregate, post_transform=post,
        base_values=base, labels=labels, label_strings=strings)
    return ens


def _import_v5(ctx, node) -> Ensemble:
    """TreeEnsemble (ai.onnx.ml opset 5): tree_roots, leaf flags, membership sets."""
    def tens(name, required=True):
        v = ctx.attr(node, name)
        if v is None:
            if required:
                raise EdgecError(f"missing attribute {name}")
            return None
        return np.asarray(v).reshape(-1)

    splits = tens("nodes_splits")
    xdt = ctx.t(ctx.inp(node, 0)).dtype
    tdtype = "float64" if (splits.dtype == np.float64 or xdt == "float64") else "float32"
    leaf_w = tens("leaf_weights")
    if leaf_w.dtype != splits.dtype:
        raise EdgecError("leaf_weights and nodes_splits have different types")
    modes = tens("nodes_modes").astype(np.int64)
    members = tens("membership_values", required=False)
    def ints(name):
        return [int(v) for v in _list(ctx, node, name)]
    roots = ints("tree_roots")
    feat = ints("nodes_featureids")
    tnode, fnode = ints("nodes_truenodeids"), ints("nodes_falsenodeids")
    tleaf, fleaf = ints("nodes_trueleafs"), ints("nodes_falseleafs")
    miss = ints("nodes_missing_value_tracks_true")
    leaf_t = ints("leaf_targetids")
    n_targets = int(ctx.attr(node, "n_targets", 0) or 0)
    nn = len(modes)
    for name, arr in (("nodes_featureids", feat), ("nodes_splits", splits),
                      ("nodes_truenodeids", tnode), ("nodes_falsenodeids", fnode),
                      ("nodes_trueleafs", tleaf), ("nodes_falseleafs", fleaf)):
        if len(arr) != nn:
            raise EdgecError(f"{name} has {len(arr)} entries, nodes_modes {nn}")
    if miss and len(miss) != nn:
        raise EdgecError("nodes_missing_value_tracks_true has the wrong length")
    if len(leaf_t) != len(leaf_w):
        raise EdgecError("leaf_targetids and leaf_weights differ in length")
    agg_codes = ("AVERAGE", "SUM", "MIN", "MAX")
    post_codes = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")
    agg = int(ctx.attr(node, "aggregate_function", 1))
    post = int(ctx.attr(node, "post_transform", 0))
    if not 0 <= agg < 4 or not 0 <= post < 5:
        raise EdgecError("bad aggregate_function or post_transform code")
    # membership values per node, NaN-separated, in node order of BRANCH_MEMBER nodes
    member_sets: dict[int, list[float]] = {}
    if np.any(modes == MEMBER):
        if members is None:
            raise EdgecError("BRANCH_MEMBER nodes without membership_values")
        pos = 0
        mv = members.astype(np.float64)
        for i in np.nonzero(modes == MEMBER)[0].tolist():
            vals = []
            while pos < len(mv) and not np.isnan(mv[pos]):
                vals.append(float(mv[pos]))
                pos += 1
            pos += 1
            if not vals:
                raise EdgecError("a BRANCH_MEMBER node has an empty set")
            member_sets[i] = vals
    if np.any((modes < 0) | (modes > MEMBER)):
        raise EdgecError("bad node mode code")
    # rebuild the opset-3 form (as onnxruntime does): per tree, nodes numbered in preorder
    T = dict(treeids=[], nodeids=[], featureids=[], modes=[], values=[], truenodeids=[],
             falsenodeids=[], missing=[], w_treeids=[], w_nodeids=[], w_ids=[], w_values=[])
    budget = [MAX_NODES]

    def emit_leaf(tree, nid, li):
        if not 0 <= li < len(leaf_w):
            raise EdgecError(f"leaf index {li} out of range")
        for k, v in (("treeids", tree), ("nodeids", nid), ("featureids", 0), ("modes", -1),
                     ("values", 0.0), ("truenodeids", 0), ("falsenodeids", 0), ("missing", 0)):
            T[k].append(v)
        T["w_treeids"].append(tree)
        T["w_nodeids"].append(nid)
        T["w_ids"].append(int(leaf_t[li]))
        T["w_values"].append(float(leaf_w[li]))

    for tree, root in enumerate(roots):
        if not 0 <= root < nn:
            raise EdgecError(f"tree root {root} out of range")
        counter = [0]
        # explicit stack: (kind, index, member position, parent slot, side, depth)
        is_leaf_root = tnode[root] == fnode[root] and tleaf[root] and fleaf[root]
        stack = [("leaf" if is_leaf_root else "node", root, 0, None, None, 0)]
        # a path through more branches than the tree has (membership sets unrolled)
        # passes one twice: the "tree" has a cycle
        max_depth = nn + sum(len(v) for v in member_sets.values())
        while stack:
            kind, i, mpos, parent, side, depth = stack.pop()
            if depth > max_depth:
                raise EdgecError(f"tree {tree} has a cycle (a path longer than its {nn} nodes)")
            nid = counter[0]
            counter[0] += 1
            budget[0] -= 1
            if budget[0] < 0:
                raise EdgecError("the tree ensemble is too large (or cyclic)")
            if parent is not None:
                T["truenodeids" if side == "L" else "falsenodeids"][parent] = nid
            if kind == "leaf":
                emit_leaf(tree, nid, i)
                continue
            if not 0 <= i < nn:
                raise EdgecError(f"node index {i} out of range")
            slot = len(T["treeids"])
            m = int(modes[i])
            if m == MEMBER:
                mode, val = EQ, member_sets[i][mpos]
            else:
                mode, val = m, float(splits[i])
            for k, v in (("treeids", tree), ("nodeids", nid), ("featureids", int(feat[i])),
                         ("modes", mode), ("values", val), ("truenodeids", 0), ("falsenodeids", 0),
                         ("missing", int(miss[i]) if miss else 0)):
                T[k].append(v)
            if m == MEMBER and mpos + 1 < len(member_sets[i]):
                false_item = ("node", i, mpos + 1, slot, "R", depth + 1)
            else:
                false_item = ("leaf" if fleaf[i] else "node", int(fnode[i]), 0, slot, "R", depth + 1)
            true_item = ("leaf" if tleaf[i] else "node", int(tnode[i]), 0, slot, "L", depth + 1)
            stack.append(false_item)
            stack.append(true_item)
    values = np.asarray(T["values"], np.float64)
    return build("regressor", treeids=T["treeids"], nodeids=T["nodeids"],
                 featureids=T["featureids"], modes=T["modes"], values=values,
                 truenodeids=T["truenodeids"], falsenodeids=T["falsenodeids"],
                 missing=T["missing"], w_treeids=T["w_treeids"], w_nodeids=T["w_nodeids"],
                 w_ids=T["w_ids"], w_values=np.asarray(T["w_values"], np.float64),
                 n_outputs=n_targets, tdtype=tdtype, aggregate=agg_codes[agg],
                 post_transform=post_codes[post])


def _add(ctx, node, ens: Ensemble):
    x = ctx.inp(node, 0)
    if ens.kind == "classifier":
        outs = [ctx.out(node, 0) or ctx.tmp("tree_label"), ctx.out(node, 1) or ctx.tmp("tree_scores")]
    else:
        outs = [ctx.out(node, 0)]
    n = ctx.add("TreeEnsemble", [x], outs, {"ensemble": ens}, node.name)
    if ens.label_strings is not None:
        ctx.g.meta.labels[outs[0]] = list(ens.label_strings)
    return n


@onnx_op("TreeEnsembleClassifier", domain="ai.onnx.ml")
def _onnx_tec(ctx, node):
    _add(ctx, node, _import_v3(ctx, node, True))


@onnx_op("TreeEnsembleRegressor", domain="ai.onnx.ml")
def _onnx_ter(ctx, node):
    _add(ctx, node, _import_v3(ctx, node, False))


@onnx_op("TreeEnsemble", domain="ai.onnx.ml")
def _onnx_te(ctx, node):
    ens = _import_v5(ctx, node)
    if ctx.t(ctx.inp(node, 0)).dtype == "float64" and node.output[0]:
        # opset 5 gives Y the input's type: compute as usual, then widen
        y = ctx.out(node, 0)
        tmp = ctx.tmp(y + "_f32")
        n = ctx.add("TreeEnsemble", [ctx.inp(node, 0)], [tmp], {"ensemble": ens}, node.name)
        ctx.add("Cast", [tmp], [y], {"to": "float64"}, node.name)
        return n
    _add(ctx, node, ens)
