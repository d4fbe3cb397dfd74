"""Graph -> Graph transformations.  Each pass is a plain function in its own
module; :func:`optimize` runs the default pipeline.  Every pass keeps the
graph's semantics (bit for bit for integer graphs) and records itself in
``g.meta.passes``."""
from __future__ import annotations

from ..ir.graph import Graph
from . import binarize, fuse, trees


def optimize(g: Graph, tree_features: str | None = None, tree_calibration=None,
             tree_quantized_input: bool = False) -> Graph:
    """The default passes; tree ensembles' features as ``tree_features`` (int8 or int16)
    levels, their grid from ``tree_calibration`` (path or edgec.data.Dataset), the model's
    input taking the levels when ``tree_quantized_input`` (edgec.passes.trees)."""
    g = g.copy()
    done = []
    for p in (fuse.fold_batchnorm, fuse.fuse_bias_add, fuse.fuse_activation, binarize.lower_binary):
        if p(g):
            done.append(p.__name__)
    tf = tree_features or "float"
    if tree_quantized_input and tf in ("float", "float32"):
        from ..ir.errors import EdgecError
        raise EdgecError("--quantized-input needs --tree-features int8 or int16")
    if tf not in ("float", "float32"):
        if trees.quantize_tree_features(g, tf, tree_calibration, bool(tree_quantized_input)):
            done.append("quantize_tree_features")
    g.meta.passes = [*g.meta.passes, *done]   # a new list: the graph copied from keeps its own
    g.remove_dead()
    g.topo_sort()
    g.validate()
    return g
