"""Random ai.onnx.ml tree-ensemble models covering the attribute variants
converters emit (used by tests/test_trees.py; importable as a helper)."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]


def random_trees(rng, n_trees, n_features, max_depth, n_out, modes=("BRANCH_LEQ",),
                 missing=0.0, weights_per_leaf=(1, 1), pos_weights=False, grid=None,
                 class_of_tree=False):
    """Lists of v3 attributes for ``n_trees`` random trees."""
    A = {k: [] for k in ("treeids", "nodeids", "featureids", "modes", "values", "true", "false",
                         "missing", "wt", "wn", "wi", "wv")}
    for t in range(n_trees):
        nid = [0]

        def grow(depth):
            me = nid[0]
            nid[0] += 1
            slot = len(A["treeids"])
            A["treeids"].append(t)
            A["nodeids"].append(me)
            if depth >= max_depth or (depth > 0 and rng.random() < 0.25):
                A["featureids"].append(0)
                A["modes"].append("LEAF")
                A["values"].append(0.0)
                A["true"].append(0)
                A["false"].append(0)
                A["missing"].append(0)
                lo, hi = weights_per_leaf
                k = int(rng.integers(lo, hi + 1))
                targets = [t % n_out] if class_of_tree else rng.choice(n_out, size=k, replace=True)
                for c in targets:
                    A["wt"].append(t)
                    A["wn"].append(me)
                    A["wi"].append(int(c))
                    w = float(rng.uniform(0, 1) if pos_weights else rng.normal())
                    A["wv"].append(w)
                return me
            f = int(rng.integers(0, n_features))
            v = float(rng.choice(grid)) if grid is not None else float(rng.normal())
            A["featureids"].append(f)
            A["modes"].append(str(rng.choice(modes)))
            A["values"].append(v)
            A["true"].append(0)
            A["false"].append(0)
            A["missing"].append(int(rng.random() < missing))
            A["true"][slot] = grow(depth + 1)
            A["false"][slot] = grow(depth + 1)
            return me
        grow(0)
    return A


def make_model(A, kind, n_features, n_out, *, post="NONE", base=None, aggregate="SUM",
               labels=None, string_labels=False, double=False, input_type=TensorProto.FLOAT,
               opset_ml=3, batch=1, v5=False):
    attrs = {
        "nodes_treeids": A["treeids"], "nodes_nodeids": A["nodeids"],
        "nodes_featureids": A["featureids"], "nodes_modes": A["modes"],
        "nodes_truenodeids": A["true"], "nodes_falsenodeids": A["false"],
        "post_transform": post,
    }
    if any(A["missing"]):
        attrs["nodes_missing_value_tracks_true"] = A["missing"]
    pre = "class" if kind == "classifier" else "target"
    attrs[f"{pre}_treeids"] = A["wt"]
    attrs[f"{pre}_nodeids"] = A["wn"]
    attrs[f"{pre}_ids"] = A["wi"]
    if double:
        attrs["nodes_values_as_tensor"] = numpy_helper.from_array(np.array(A["values"], np.float64))
        attrs[f"{pre}_weights_as_tensor"] = numpy_helper.from_array(np.array(A["wv"], np.float64))
        if base is not None:
            attrs["base_values_as_tensor"] = numpy_helper.from_array(np.array(base, np.float64))
    else:
        attrs["nodes_values"] = A["values"]
        attrs[f"{pre}_weights"] = A["wv"]
        if base is not None:
            attrs["base_values"] = list(base)
    X = helper.make_tensor_value_info("X", input_type, [batch, n_features])
    if kind == "classifier":
        if string_labels:
            attrs["classlabels_strings"] = [f"c{i}" for i in range(n_out)]
            lab_t = TensorProto.STRING
        else:
            attrs["classlabels_int64s"] = list(labels if labels is not None else range(n_out))
            lab_t = TensorProto.INT64
        node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "scores"],
                                domain="ai.onnx.ml", **attrs)
        outs = [helper.make_tensor_value_info("label", lab_t, [batch]),
                helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, n_out])]
    else:
        attrs["n_targets"] = n_out
        attrs["aggregate_function"] = aggregate
        node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", **attrs)
        outs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [batch, n_out])]
    if v5:
        node = to_v5(node, A, n_out, double, aggregate, post)
        opset_ml = 5
    graph = helper.make_graph([node], "trees", [X], outs)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid("ai.onnx.ml", opset_ml)])
    m.ir_version = 9 if opset_ml < 5 else 10
    return m


def to_v5(node, A, n_out, double, aggregate, post):
    """The same trees as a TreeEnsemble (ai.onnx.ml opset 5) node: nodes and leaves in
    separate index spaces; EQ chains on one feature merged into BRANCH_MEMBER is not
    attempted (plain modes only)."""
    dt = np.float64 if double else np.float32
    code = {m: i for i, m in enumerate(MODES)}
    # index nodes by (tree, node)
    idx = {(t, n): i for i, (t, n) in enumerate(zip(A["treeids"], A["nodeids"]))}
    leaf_w = {}
    for t, n, c, w in zip(A["wt"], A["wn"], A["wi"], A["wv"]):
        leaf_w.setdefault((t, n), []).append((c, w))
    branch_ids, leaf_ids = {}, {}
    for i, m in enumerate(A["modes"]):
        key = (A["treeids"][i], A["nodeids"][i])
        if m == "LEAF":
            leaf_ids[key] = len(leaf_ids)
        else:
            branch_ids[key] = len(branch_ids)
    # v5 leaves hold one weight each: only single-weight leaves are representable
    feat, splits, modes, tn, fn, tl, fl, miss = [], [], [], [], [], [], [], []
    for i, m in enumerate(A["modes"]):
        if m == "LEAF":
            continue
        t = A["treeids"][i]
        feat.append(A["featureids"][i])
        splits.append(A["values"][i])
        modes.append(code[m])
        miss.append(A["missing"][i])
        for ch, ids, leafs in ((A["true"][i], tn, tl), (A["false"][i], fn, fl)):
            key = (t, ch)
            if A["modes"][idx[key]] == "LEAF":
                ids.append(leaf_ids[key])
                leafs.append(1)
            else:
                ids.append(branch_ids[key])
                leafs.append(0)
    lt, lw = [0] * len(leaf_ids), [0.0] * len(leaf_ids)
    for key, li in leaf_ids.items():
        ws = leaf_w[key]
        assert len(ws) == 1, "v5 leaves carry one weight"
        lt[li], lw[li] = ws[0]
    roots = []
    for t in sorted(set(A["treeids"])):
        first = A["treeids"].index(t)
        key = (t, A["nodeids"][first])
        roots.append(branch_ids[key])
    agg = {"AVERAGE": 0, "SUM": 1, "MIN": 2, "MAX": 3}[aggregate]
    pt = {"NONE": 0, "SOFTMAX": 1, "LOGISTIC": 2, "SOFTMAX_ZERO": 3, "PROBIT": 4}[post]
    attrs = dict(n_targets=n_out, aggregate_function=agg, post_transform=pt, tree_roots=roots,
                 nodes_featureids=feat, nodes_splits=numpy_helper.from_array(np.array(splits, dt)),
                 nodes_modes=numpy_helper.from_array(np.array(modes, np.uint8)),
                 nodes_truenodeids=tn, nodes_falsenodeids=fn, nodes_trueleafs=tl,
                 nodes_falseleafs=fl, leaf_targetids=lt,
                 leaf_weights=numpy_helper.from_array(np.array(lw, dt)))
    if any(miss):
        attrs["nodes_missing_value_tracks_true"] = miss
    return helper.make_node("TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", **attrs)


def ort_run(model, X):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: X})
