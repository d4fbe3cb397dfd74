"""Synthetic images for measuring quantization where no real data ships offline
(VWW's person images, CIFAR-10): smooth, natural-looking random images, not noise.

Each image is a sum of six random 2-D sinusoids (spatial frequencies up to 6 cycles
per image, random phase, per-channel weights), plus three Gaussian blobs, normalised
to [0, 1], plus Gaussian pixel noise (sigma 0.03), clipped and scaled to the model's
input range [lo, hi].  The same generator and seeds give the same images everywhere:
calibration uses seed 1, evaluation seed 2 (disjoint sets)."""
from __future__ import annotations

import numpy as np


def images(shape, n: int, seed: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """``n`` images of ``shape`` (H, W, C), float32 in [lo, hi]: [n, H, W, C]."""
    H, W, C = shape
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W] / max(H, W)
    out = np.empty((n, H, W, C), np.float32)
    for k in range(n):
        img = np.zeros((H, W, C))
        for _ in range(6):
            fy, fx = r.uniform(0, 6, 2)
            ph = r.uniform(0, 2 * np.pi)
            wave = np.sin(2 * np.pi * (fy * yy + fx * xx) + ph)
            img += r.uniform(0.2, 1.0) * wave[..., None] * r.uniform(0.3, 1.0, C)
        for _ in range(3):
            cy, cx = r.uniform(0, 1, 2)
            s = r.uniform(0.05, 0.3)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
            img += r.uniform(-1.5, 1.5) * blob[..., None] * r.uniform(0.3, 1.0, C)
        img = (img - img.min()) / (img.max() - img.min() + 1e-9)
        img += r.normal(0, 0.03, img.shape)
        out[k] = np.clip(img, 0, 1) * (hi - lo) + lo
    return out
