"""Rendering a scene graph (SPEC §6): backgrounds, anti-aliased shapes, occlusion and instance masks.

Shapes are rasterised hard at ``SUPERSAMPLE`` x the output resolution and box-averaged, so each object gets a
coverage ``alpha`` in [0, 1] per pixel (anti-aliased edges). Objects are composited back to front (the "over"
operator), which makes the image an exact sum of per-layer weights::

    image = w_bg * background + sum_i w_i * colour_i,   w_i = alpha_i * prod_{j nearer than i} (1 - alpha_j)

The instance label of a pixel is the layer with the largest weight (0 = background), and the visible mask of
object i is ``labels == i + 1``; so masks follow the depth order by construction.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from setok.data.miniworld.scene import COLOURS, MAX_OBJECTS, sample_scene, shape_mask

SUPERSAMPLE = 4
MIN_RESOLUTION = 16


@dataclass(frozen=True)
class Rendered:
    """One rendered scene. Shapes: ``M`` objects in depth order (far to near), ``H x W`` pixels.

    image (float32, (H, W, 3)) in [0, 1]; background (float32, (H, W, 3)); alpha (float32, (M, H, W)) amodal
    coverage; weights (float32, (M, H, W)) visible compositing weight of each object; labels (int64, (H, W))
    0 = background, i = object i; masks (bool, (M, H, W)) visible region of each object.
    """

    image: np.ndarray
    background: np.ndarray
    alpha: np.ndarray
    weights: np.ndarray
    labels: np.ndarray
    masks: np.ndarray


def check_resolution(resolution: int) -> int:
    """Return ``resolution`` if it is an int >= MIN_RESOLUTION, else raise a ValueError."""
    if not isinstance(resolution, int | np.integer) or resolution < MIN_RESOLUTION:
        raise ValueError(f"resolution must be an integer >= {MIN_RESOLUTION} (got resolution={resolution!r})")
    return int(resolution)


def colour_rgb(name: str) -> np.ndarray:
    """A named colour as float32 RGB in [0, 1]."""
    if name not in COLOURS:
        raise ValueError(f"unknown colour {name!r}; choose one of {', '.join(COLOURS)}")
    return np.asarray(COLOURS[name], dtype=np.float32) / 255.0


@lru_cache(maxsize=16)
def _photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as uint8 RGB (h, w, 3), downscaled once to a 192-px short side (grey photos
    are replicated to RGB)."""
    import skimage.data
    from skimage.transform import resize

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3]
    scale = 192 / min(img.shape[:2])
    shape = (round(img.shape[0] * scale), round(img.shape[1] * scale))
    small = resize(img, shape, order=1, anti_aliasing=True, preserve_range=True)
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)


def render_background(bg: dict[str, Any], height: int, width: int) -> np.ndarray:
    """The (H, W, 3) float32 background described by ``bg`` (see ``scene.sample_background``)."""
    kind = bg["kind"]
    if kind == "flat":
        return np.broadcast_to(np.asarray(bg["colour"], np.float32) / 255.0, (height, width, 3)).copy()
    v = (np.arange(height, dtype=np.float32) + 0.5) / height  # pixel centres in [0, 1]
    u = (np.arange(width, dtype=np.float32) + 0.5) / width
    if kind == "gradient":
        a = math.radians(bg["angle"])
        t = (u[None, :] - 0.5) * math.cos(a) + (v[:, None] - 0.5) * math.sin(a)  # (H, W)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        c0, c1 = (np.asarray(c, np.float32) / 255.0 for c in bg["colours"])
        return (c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.float32)
    if kind == "noise":
        from scipy.ndimage import map_coordinates

        cells = bg["cells"]
        g = np.random.default_rng(bg["noise_seed"])
        # grey blotches with a little colour, so that no blotch is mistaken for an object
        grid = g.uniform(0.25, 0.75, size=(1, cells, cells)) + g.uniform(-0.1, 0.1, size=(3, cells, cells))
        yy, xx = np.meshgrid(v * (cells - 1), u * (cells - 1), indexing="ij")
        out = [map_coordinates(grid[c], [yy, xx], order=1, mode="nearest") for c in range(3)]
        return np.stack(out, axis=-1).astype(np.float32)
    if kind == "photo":
        from PIL import Image

        img = _photo(bg["photo"])
        h, w = img.shape[:2]
        side = max(8, int(bg["size"] * min(h, w)))
        top, left = int(bg["top"] * (h - side)), int(bg["left"] * (w - side))
        crop = Image.fromarray(img[top:top + side, left:left + side])
        out = np.asarray(crop.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
        return (0.7 * out + 0.15).astype(np.float32)  # lower the contrast so objects stay salient
    raise ValueError(f"unknown background kind {kind!r}")


def coverage(obj: dict[str, Any], height: int, width: int, supersample: int = SUPERSAMPLE) -> np.ndarray:
    """Anti-aliased (H, W) coverage of one object: a hard raster at ``supersample`` x, box-averaged.

    Only the object's bounding window is rasterised (every vertex lies within 1.2 radii of the centre)."""
    s = supersample
    out = np.zeros((height, width), dtype=np.float32)
    reach = 1.2 * obj["radius"] * min(height, width)
    cx, cy = obj["x"] * width, obj["y"] * height
    x0, x1 = max(0, math.floor(cx - reach)), min(width, math.ceil(cx + reach))
    y0, y1 = max(0, math.floor(cy - reach)), min(height, math.ceil(cy + reach))
    if x1 <= x0 or y1 <= y0:
        return out
    hard = shape_mask(obj, height * s, width * s, window=(y0 * s, x0 * s, (y1 - y0) * s, (x1 - x0) * s))
    out[y0:y1, x0:x1] = hard.reshape(y1 - y0, s, x1 - x0, s).mean(axis=(1, 3), dtype=np.float32)
    return out


def render_scene(scene: dict[str, Any], resolution: int) -> Rendered:
    """Render ``scene`` at ``resolution`` x ``resolution`` pixels (deterministic: a pure function of the graph)."""
    res = check_resolution(resolution)
    objects = scene["objects"]
    m = len(objects)
    background = render_background(scene["background"], res, res)
    alpha = np.zeros((m, res, res), dtype=np.float32)
    for i, obj in enumerate(objects):
        alpha[i] = coverage(obj, res, res)
    # Over-compositing back to front; weights[i] = alpha_i * prod_{j > i} (1 - alpha_j).
    transmit = np.ones((res, res), dtype=np.float32)  # how much of the layers behind shows through
    weights = np.zeros_like(alpha)
    for i in range(m - 1, -1, -1):  # nearest first
        weights[i] = alpha[i] * transmit
        transmit = transmit * (1 - alpha[i])
    image = background * transmit[..., None]
    for i, obj in enumerate(objects):
        image = image + weights[i][..., None] * colour_rgb(obj["colour"])
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    layers = np.concatenate([transmit[None], weights], axis=0)  # (M + 1, H, W), 0 = background
    labels = layers.argmax(axis=0).astype(np.int64)
    masks = labels[None] == np.arange(1, m + 1)[:, None, None]
    return Rendered(image=image, background=background, alpha=alpha, weights=weights, labels=labels, masks=masks)


def annotate_scene(scene: dict[str, Any], rendered: Rendered) -> dict[str, Any]:
    """A copy of ``scene`` with pixel annotations: width/height, and per object its visible ``bbox``
    ([x, y, w, h], COCO convention), visible ``area`` (pixels) and ``visible_fraction``."""
    out = copy.deepcopy(scene)
    h, w = rendered.labels.shape
    out["width"], out["height"] = int(w), int(h)
    for i, obj in enumerate(out["objects"]):
        mask = rendered.masks[i]
        ys, xs = np.nonzero(mask)
        obj["area"] = int(mask.sum())
        obj["bbox"] = ([int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
                       if len(xs) else [0, 0, 0, 0])
        full = float(rendered.alpha[i].sum())
        obj["visible_fraction"] = round(float(rendered.weights[i].sum()) / full, 4) if full else 0.0
    return out


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] as uint8 (rounded), for PNG files."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def make_example(split: str, index: int, seed: int, resolution: int,
                 max_objects: int = MAX_OBJECTS) -> tuple[dict[str, Any], Rendered]:
    """Sample, render and annotate image ``index``: returns (scene graph with pixel annotations, Rendered)."""
    scene = sample_scene(split, index, seed, max_objects=max_objects)
    rendered = render_scene(scene, resolution)
    return annotate_scene(scene, rendered), rendered
