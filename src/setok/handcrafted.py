"""Real photographs that ship offline, and transparent hand-made patch features for them.

At paper scale SeTok clusters the patch features of a SigLIP vision tower. Readers of the clustering chapter should
see the algorithm work on real photographs without any download or training, so this module provides patch
features anyone can read: per patch of a ``grid x grid`` split, the mean CIELAB colour, its spread, and gradient
(texture) statistics. They are standardised per image, so the clustering space (an L2 normalisation, SPEC §1.1)
compares patches by their direction away from the image's average patch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

# Photographs and scans shipped by scikit-image (no download), plus scikit-learn's and matplotlib's samples.
SKIMAGE_PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "page", "clock",
    "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel", "brick", "grass", "gravel", "text", "cell",
)
EXTRA_PHOTOS = ("china", "flower", "grace_hopper")
PHOTOS = SKIMAGE_PHOTOS + EXTRA_PHOTOS
FEATURE_NAMES = ("L", "a", "b", "std_L", "std_a", "std_b", "grad", "grad_x", "grad_y")


def load_photo(name: str, size: int = 256) -> np.ndarray:
    """A photo as float RGB in [0, 1], centre-cropped to a square and resized to ``size x size``."""
    from skimage import color, data, transform

    if name in SKIMAGE_PHOTOS:
        img = getattr(data, name)()
    elif name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        img = load_sample_image(f"{name}.jpg")
    elif name == "grace_hopper":
        import matplotlib.cbook as cbook

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            import matplotlib.image as mpimg

            img = mpimg.imread(f)
    else:
        raise ValueError(f"unknown photo {name!r}; choose from {PHOTOS}")
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.float64)
    if img.ndim == 2:
        img = color.gray2rgb(img)
    img = img[..., :3]
    img = img.astype(np.float64)
    if img.max() > 1.0:
        img = img / 255.0
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = img[top : top + s, left : left + s]
    return np.clip(transform.resize(img, (size, size), anti_aliasing=True), 0.0, 1.0)


def load_folder(folder: str | Path, size: int, limit: int | None = None) -> tuple[list[str], list[np.ndarray]]:
    """Images (jpg/png) of a local folder, as :func:`load_photo` returns them (used at the paper profile)."""
    from skimage import io, transform

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
    if not files:
        raise FileNotFoundError(f"no .jpg/.png images in {folder}")
    images = []
    for p in files:
        img = io.imread(p)[..., :3] / 255.0
        s = min(img.shape[:2])
        img = img[(img.shape[0] - s) // 2 :][:s, (img.shape[1] - s) // 2 :][:, :s]
        images.append(transform.resize(img, (size, size), anti_aliasing=True))
    return [p.stem for p in files], images


def patch_features(image: np.ndarray, grid: int) -> Tensor:
    """Hand-made features of the ``grid x grid`` patches of an RGB image, (N, 9), standardised per image.

    Columns (``FEATURE_NAMES``): mean L*, a*, b* of the patch; their standard deviations; mean gradient magnitude of
    L* and mean absolute x and y gradients (texture and its orientation).
    """
    from skimage import color

    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB (got shape {image.shape})")
    H, W, _ = image.shape
    if H % grid or W % grid:
        raise ValueError(f"image size {H}x{W} must be divisible by the grid {grid}")
    lab = color.rgb2lab(image)  # (H, W, 3)
    gy, gx = np.gradient(lab[..., 0])
    p = H // grid
    blocks = lab.reshape(grid, p, grid, p, 3).transpose(0, 2, 1, 3, 4).reshape(grid * grid, p * p, 3)
    gxb = np.abs(gx).reshape(grid, p, grid, p).transpose(0, 2, 1, 3).reshape(grid * grid, -1)
    gyb = np.abs(gy).reshape(grid, p, grid, p).transpose(0, 2, 1, 3).reshape(grid * grid, -1)
    feats = np.concatenate([
        blocks.mean(1), blocks.std(1),
        np.hypot(gxb, gyb).mean(1, keepdims=True), gxb.mean(1, keepdims=True), gyb.mean(1, keepdims=True),
    ], axis=1)  # (N, 9)
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    weights = np.array([2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5])  # colour first, texture second
    return torch.from_numpy(feats * weights).float()


def photo_batch(names: list[str], size: int, grid: int) -> tuple[list[np.ndarray], Tensor]:
    """Images and their stacked hand-made features (B, N, 9)."""
    images = [load_photo(n, size) for n in names]
    return images, torch.stack([patch_features(im, grid) for im in images])


def image_complexity(image: np.ndarray) -> float:
    """A model-free complexity proxy: PNG-compressed bytes per pixel of the 8-bit image (more detail, more bytes)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG", optimize=True)
    return buf.tell() / (image.shape[0] * image.shape[1])
