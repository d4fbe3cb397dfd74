"""A binarized MLP trained here, in numpy, on scikit-learn's 8x8 digits, and its
independent numpy reference.

Training: straight-through estimator (Courbariaux et al.): latent float weights
clipped to [-1, 1], forward with sign(w) and sign(activations), gradients passed
through sign where |x| <= 1; batch normalization after every binary layer.  At
inference each batch norm is a per-channel scale and shift ``k * dot + c``.

The network: pixels in [0, 1] binarized at 0.5 -> 64 -> H -> H -> 10, every layer
binary (+/-1 inputs and weights).  ``to_onnx`` writes it as a plain float ONNX
graph (Add, Sign, MatMul with +/-1 weights, Mul, Add), the form edgec recognizes
as binarized; ``reference`` computes the same network in numpy with integers and
the float32 scale and shift, independently of edgec.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import digits


def sgn(x):
    return np.where(x < 0, -1.0, 1.0).astype(np.float32)


@dataclass
class BinaryMLP:
    w: list          # latent float weights [K, N] per layer
    k: list          # per-channel scale (float32) per layer, from batch norm
    c: list          # per-channel shift (float32) per layer
    # pixels are multiples of 1/16: 15/32 binarizes like 0.5 and no pixel equals it,
    # so the float graph's Sign never sees an exact 0 at the input
    threshold: float = 15 / 32

    def signs(self):
        return [sgn(w).astype(np.int64) for w in self.w]


def train(hidden: int = 256, epochs: int = 60, seed: int = 0, lr: float = 0.01) -> BinaryMLP:
    xtr, ytr, _, _ = digits.split(seed)
    x = xtr.reshape(len(xtr), -1)
    rng = np.random.default_rng(seed)
    sizes = [64, hidden, hidden, 10]
    W = [rng.uniform(-1, 1, (a, b)).astype(np.float64) * 0.5 for a, b in zip(sizes[:-1], sizes[1:])]
    gam = [np.ones(b) for b in sizes[1:]]
    bet = [np.zeros(b) for b in sizes[1:]]
    params = W + gam + bet
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    eps, b1, b2 = 1e-5, 0.9, 0.999
    step = 0
    onehot = np.eye(10)[ytr]
    a0 = sgn(x - 0.5).astype(np.float64)
    for ep in range(epochs):
        rate = lr * (0.5 * (1 + np.cos(np.pi * ep / epochs)))
        perm = rng.permutation(len(x))
        for s in range(0, len(x), 64):
            idx = perm[s:s + 64]
            B = len(idx)
            acts, cache = [a0[idx]], []
            for li in range(3):
                wb = sgn(W[li]).astype(np.float64)
                z = acts[-1] @ wb
                mu, var = z.mean(0), z.var(0)
                zh = (z - mu) / np.sqrt(var + eps)
                u = gam[li] * zh + bet[li]
                cache.append((wb, zh, var, u))
                acts.append(sgn(u).astype(np.float64) if li < 2 else u)
            logits = acts[-1]
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            du = (p - onehot[idx]) / B
            grads_w, grads_g, grads_b = [None] * 3, [None] * 3, [None] * 3
            for li in (2, 1, 0):
                wb, zh, var, u = cache[li]
                if li < 2:
                    du = du * (np.abs(u) <= 1.0)
                grads_g[li] = (du * zh).sum(0)
                grads_b[li] = du.sum(0)
                dzh = du * gam[li]
                dz = (B * dzh - dzh.sum(0) - zh * (dzh * zh).sum(0)) / (B * np.sqrt(var + eps))
                grads_w[li] = (acts[li].T @ dz) * (np.abs(W[li]) <= 1.0)
                du = dz @ wb.T
            grads = grads_w + grads_g + grads_b
            step += 1
            for i, (pp, gg) in enumerate(zip(params, grads)):
                m[i] = b1 * m[i] + (1 - b1) * gg
                v[i] = b2 * v[i] + (1 - b2) * gg * gg
                mh = m[i] / (1 - b1 ** step)
                vh = v[i] / (1 - b2 ** step)
                pp -= rate * mh / (np.sqrt(vh) + 1e-8)
            for w in W:
                np.clip(w, -1.0, 1.0, out=w)
    # inference batch norm: population statistics of the training set
    ks, cs = [], []
    a = a0
    for li in range(3):
        z = a @ sgn(W[li]).astype(np.float64)
        mu, var = z.mean(0), z.var(0)
        k = gam[li] / np.sqrt(var + eps)
        c = bet[li] - mu * k
        ks.append(k.astype(np.float32))
        cs.append(c.astype(np.float32))
        a = sgn(z * k + c).astype(np.float64)
    return BinaryMLP([w.astype(np.float32) for w in W], ks, cs)


def reference(m: BinaryMLP, x: np.ndarray) -> np.ndarray:
    """The binarized network on one or more inputs [..., 64] (float32 logits), with
    the arithmetic edgec promises: exact integer dot products, then
    ``float32(dot) * k + c`` in float32; a hidden unit is -1 where that is < 0."""
    a = np.where(np.asarray(x, np.float32).reshape(-1, 64) < np.float32(m.threshold), -1, 1)
    ws = m.signs()
    for li in range(3):
        z = (a.astype(np.int64) @ ws[li]).astype(np.float32)
        u = z * m.k[li] + m.c[li]
        if li < 2:
            a = np.where(u < 0, -1, 1)
    return u


def accuracy(m: BinaryMLP, x, y) -> float:
    return float(np.mean(reference(m, x).argmax(1) == y))


def to_onnx(m: BinaryMLP, path, fold_scale_into_weights: int | None = 1):
    """The float ONNX graph of the binarized MLP: x -> Add(-0.5) -> Sign -> MatMul(+/-1)
    -> Mul(k) -> Add(c) -> Sign -> ...  Layer ``fold_scale_into_weights`` carries its
    scale in the weights instead (+/-|k| per channel, negative k flipping the signs)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    nodes.append(helper.make_node("Add", ["x", const("neg_threshold", np.array([-m.threshold]))], ["xc"]))
    prev = "xc"
    ws = m.signs()
    for li in range(3):
        nodes.append(helper.make_node("Sign", [prev], [f"s{li}"]))
        if li == fold_scale_into_weights:
            w = ws[li].astype(np.float32) * m.k[li][None, :]
            nodes.append(helper.make_node("MatMul", [f"s{li}", const(f"w{li}", w)], [f"u{li}"]))
        else:
            nodes.append(helper.make_node("MatMul", [f"s{li}", const(f"w{li}", ws[li])], [f"z{li}"]))
            nodes.append(helper.make_node("Mul", [f"z{li}", const(f"k{li}", m.k[li])], [f"u{li}"]))
        out = "logits" if li == 2 else f"h{li}"
        nodes.append(helper.make_node("Add", [f"u{li}", const(f"c{li}", m.c[li])], [out]))
        prev = out
    graph = helper.make_graph(nodes, "bnn_digits",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
