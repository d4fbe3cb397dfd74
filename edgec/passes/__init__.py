"""Graph -> Graph transformations.  Each pass is a plain function in its own
module; :func:`optimize` runs the default pipeline.  Every pass keeps the
graph's semantics (bit for bit for integer graphs) and records itself in
``g.meta.passes``."""
from __future__ import annotations

from ..ir.graph import Graph
from . import binarize, fuse, trees


def optimize(g: Graph, options: dict | None = None) -> Graph:
    g = g.copy()
    done = []
    for p in (fuse.fold_batchnorm, fuse.fuse_bias_add, fuse.fuse_activation, binarize.lower_binary):
        if p(g):
            done.append(p.__name__)
    options = options or {}
    tf = options.get("tree_features") or "float"
    if options.get("tree_quantized_input") and tf in ("float", "float32"):
        from ..ir.errors import EdgecError
        raise EdgecError("--quantized-input needs --tree-features int8 or int16")
    if tf not in ("float", "float32"):
        if trees.quantize_tree_features(g, tf, options.get("tree_calibration"),
                                        bool(options.get("tree_quantized_input"))):
            done.append("quantize_tree_features")
    g.meta.passes = [*g.meta.passes, *done]   # a new list: the graph copied from keeps its own
    g.remove_dead()
    g.topo_sort()
    g.validate()
    return g
