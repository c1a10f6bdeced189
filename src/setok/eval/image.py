"""Generation and editing scores: FID, CLIP-I and editing L1 with pluggable feature extractors (SPEC §5.1).

Table 4 of arXiv 2406.05127v1 reports text-to-image FID and CLIP-I on MS-COCO-30K, and editing CLIP-I and
L1 on MagicBrush, Emu-Edit and EVR. CLIP-I and L1 are returned multiplied by 100, as the paper prints them.

- FID (Heusel et al. 2017): the Fréchet distance between Gaussians fitted to the features of two image sets,
  ``||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})``. The standard number needs the FID Inception-v3
  weights (``pt_inception-2015-12-05``, torch-fidelity's port of the TF graph) from a local path.
- CLIP-I: mean cosine similarity between the CLIP image embeddings of paired images (generated vs
  reference). The standard number needs a local CLIP checkpoint (``CLIPVisionModelWithProjection``).
- Editing L1 as in MagicBrush (Zhang et al. 2023): resize the edited image to the reference's size, pixels in
  [0, 1], mean absolute difference. MagicBrush and EVR compare with the target image; Emu-Edit has no target
  and compares with the input image (``reference="target" | "input"``, default per benchmark).

Extractors follow the :class:`Extractor` protocol: a ``name``, a ``standard`` flag and ``__call__(images)``
mapping (B, 3, H, W) floats in [0, 1] to (B, D) features. With no weight path in the config, a named
non-standard extractor is used (a fixed random-projection CNN, or any encoder passed in, e.g. the mini SeTok
encoder), and every result carries ``"extractor": name, "standard": False``: such numbers compare runs
within this book, never with the paper.

Images are torch tensors or numpy arrays, (3, H, W) or (H, W, 3), floats in [0, 1] or uint8 in [0, 255];
a set of images is an (N, 3, H, W) array or a list / mapping id -> image (sizes may differ).

Worked example (2-D features, so the Gaussians can be checked by hand)::

    >>> import numpy as np
    >>> from setok.eval.image import frechet_distance, editing_l1
    >>> # N((0, 0), I) vs N((3, 4), 4 I): |mu|^2 = 25, tr(I + 4I - 2 * 2I) = 2  ->  27
    >>> round(frechet_distance(np.zeros(2), np.eye(2), np.array([3.0, 4.0]), 4 * np.eye(2)), 6)
    27.0
    >>> pred = np.full((3, 2, 2), 0.5); target = np.zeros((3, 4, 4)); target[:, :2] = 1.0
    >>> editing_l1([pred], [target])["l1"]    # resized to 4x4 first; |0.5 - 1| = |0.5 - 0| = 0.5, x100
    50.0
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from tqdm.auto import tqdm

# Which image an edit is compared with (SPEC §5.1: MagicBrush, EVR -> target; Emu-Edit -> input).
EDIT_REFERENCE = {"magicbrush": "target", "evr": "target", "emu-edit": "input"}
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP preprocessing, used if the checkpoint has none
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# ------------------------------------------------------------------------------------------- images
def to_image(x: Any, name: str = "image") -> torch.Tensor:
    """One image as a float (3, H, W) tensor in [0, 1], from (3, H, W) / (H, W, 3), float [0, 1] or uint8."""
    if hasattr(x, "detach"):
        t = x.detach().cpu()
    else:
        t = torch.from_numpy(np.array(x))  # copies: PIL images and read-only arrays are fine
    if t.ndim != 3 or 3 not in (t.shape[0], t.shape[-1]):
        raise ValueError(f"{name} must be (3, H, W) or (H, W, 3) (got shape {tuple(t.shape)})")
    if t.shape[0] != 3:
        t = t.permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)
    if t.dtype == torch.uint8:
        return t.float() / 255.0
    if not t.is_floating_point():
        raise ValueError(f"{name} must be float in [0, 1] or uint8 (got dtype {t.dtype})")
    t = t.float()
    if not torch.isfinite(t).all() or t.min() < 0 or t.max() > 1:
        raise ValueError(f"{name} must hold values in [0, 1] (got min {t.min():.3g}, max {t.max():.3g})")
    return t


def _image_list(images: Any, name: str) -> list[torch.Tensor]:
    """A set of images (N, 3, H, W) / list / mapping id -> image, as a list of (3, H, W) tensors."""
    if isinstance(images, Mapping):
        images = list(images.values())
    elif hasattr(images, "ndim") and images.ndim == 4:
        images = list(images)
    elif not isinstance(images, Sequence):
        raise ValueError(f"{name} must be an (N, 3, H, W) array or a list/mapping of images")
    return [to_image(im, f"{name}[{i}]") for i, im in enumerate(images)]


def _paired(preds: Any, refs: Any, what: str = "refs") -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Two equally long image lists, matched by id when both are mappings."""
    if isinstance(preds, Mapping) and isinstance(refs, Mapping):
        missing = [k for k in refs if k not in preds]
        extra = [k for k in preds if k not in refs]
        if missing or extra:
            raise ValueError(f"ids differ: {len(missing)} {what} ids have no prediction (e.g. "
                             f"{missing[:5]}), {len(extra)} prediction ids are not in {what} "
                             f"(e.g. {extra[:5]})")
        preds = [preds[k] for k in refs]
    p, r = _image_list(preds, "preds"), _image_list(refs, what)
    if len(p) != len(r):
        raise ValueError(f"preds and {what} must pair up (got {len(p)} and {len(r)} images)")
    if not p:
        raise ValueError("no images to score")
    return p, r


def resize(image: torch.Tensor, size: tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """Resize a (3, H, W) image in [0, 1] to ``size`` (antialiased when shrinking), clamped back to [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = F.interpolate(image[None], size=tuple(size), mode=mode, antialias=mode in ("bilinear", "bicubic"),
                        align_corners=False if mode in ("bilinear", "bicubic") else None)
    return out[0].clamp(0, 1)  # bicubic overshoots


# ------------------------------------------------------------------------------------------- extractors
@runtime_checkable
class Extractor(Protocol):
    """Maps (B, 3, H, W) images in [0, 1] to (B, D) features; ``standard``: numbers compare to papers."""

    name: str
    standard: bool

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


class RandomConvExtractor:
    """A fixed random-projection CNN (3 strided convs + ReLU + mean pool); non-standard, seeded, no weights.

    Enough to tell image distributions apart in the mini world, and identical on every machine.
    """

    standard = False

    def __init__(self, dim: int = 64, seed: int = 0, image_size: int = 64):
        if dim < 1 or image_size < 8:
            raise ValueError(f"dim must be >= 1 and image_size >= 8 (got dim={dim}, image_size={image_size})")
        g = torch.Generator().manual_seed(seed)
        shapes = [(32, 3, 4, 4), (64, 32, 4, 4), (dim, 64, 3, 3)]
        # He-scaled Gaussian weights keep activations O(1) through the ReLUs
        self.weights = [torch.randn(s, generator=g) * (2.0 / (s[1] * s[2] * s[3])) ** 0.5 for s in shapes]
        self.image_size = image_size
        self.name = f"random-conv-d{dim}-s{seed}"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        size = (self.image_size, self.image_size)
        x = F.interpolate(images, size=size, mode="bilinear", antialias=True)  # (B, 3, S, S)
        x = x * 2 - 1
        for w in self.weights:
            x = F.relu(F.conv2d(x, w, stride=2))
        return x.mean(dim=(2, 3))  # (B, D)


class EncoderExtractor:
    """Wrap a vision encoder (e.g. the mini SeTok's ``SiglipVisionModel``) as a non-standard extractor.

    The encoder sees pixels normalised to [-1, 1] at ``image_size`` and its patch features are mean-pooled.
    """

    standard = False

    def __init__(self, encoder: Callable, name: str, image_size: int | None = None):
        self.encoder = encoder
        self.name = name
        config = getattr(encoder, "config", None)
        self.image_size = image_size or getattr(config, "image_size", None)
        if self.image_size is None:
            raise ValueError(f"image_size is needed for encoder {name!r} (its config has none)")

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images, size=(self.image_size,) * 2, mode="bilinear", antialias=True)
        out = self.encoder(pixel_values=x * 2 - 1)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out  # (B, N, d)
        return hidden.mean(dim=1) if hidden.ndim == 3 else hidden


def _check_path(path: str | Path, key: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{key}: no such file or directory: {p} (set it in the profile's eval_image "
                                "section, or leave it null to use a labelled non-standard extractor)")
    return p


class ClipImageExtractor:
    """CLIP image embeddings (``CLIPVisionModelWithProjection.image_embeds``), local checkpoint; standard.

    Preprocessing follows CLIP's: bicubic resize of the short side, centre crop, mean/std normalisation (read
    from ``preprocessor_config.json`` when present). Resizing is torch's antialiased bicubic, not PIL's, so
    numbers may differ from the reference pipeline in the third digit.
    """

    standard = True

    def __init__(self, path: str | Path, key: str = "eval_image.clip_path",
                 device: str | torch.device = "cpu"):
        from transformers import CLIPVisionModelWithProjection

        path = _check_path(path, key)
        self.model = CLIPVisionModelWithProjection.from_pretrained(str(path)).to(device).eval()
        self.device = device
        self.image_size = int(self.model.config.image_size)
        mean, std = CLIP_MEAN, CLIP_STD
        pre = path / "preprocessor_config.json"
        if pre.is_file():
            cfg = json.loads(pre.read_text())
            mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        self.name = f"clip:{path.name}"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        s = self.image_size
        h, w = images.shape[-2:]
        scale = s / min(h, w)
        size = (max(s, round(h * scale)), max(s, round(w * scale)))
        x = F.interpolate(images, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        top, left = (size[0] - s) // 2, (size[1] - s) // 2
        x = x[..., top:top + s, left:left + s]  # (B, 3, s, s) centre crop
        x = (x - self.mean) / self.std
        return self.model(pixel_values=x.to(self.device)).image_embeds.float().cpu()  # (B, D)


class InceptionExtractor:
    """The FID Inception-v3 pool features (2048-d) from local ``pt_inception-2015-12-05`` weights; standard.

    Runs torchmetrics' ``NoTrainInceptionV3``, which needs torch-fidelity (installed on the GPU environment,
    not in this CPU venv); without it this raises an ImportError naming what is missing.
    """

    standard = True

    def __init__(self, path: str | Path, key: str = "eval_image.inception_path"):
        path = _check_path(path, key)
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3

            self.model = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                            feature_extractor_weights_path=str(path))
        except ModuleNotFoundError as err:
            raise ImportError(f"the standard FID extractor needs torch-fidelity (and its weights at {path}); "
                              f"install it on the GPU environment ({err})") from err
        self.name = f"inception-v3-fid:{path.name}"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = (images * 255).round().to(torch.uint8)  # the FID network takes uint8 pixels and resizes to 299
        return self.model(x).double()  # (B, 2048)


@dataclasses.dataclass
class ImageEvalConfig:
    """Where the standard metric weights live (local paths only; SPEC §5.1) and the fallback extractor."""

    inception_path: str | None = None  # pt_inception-2015-12-05-6726825d.pth (FID); None -> non-standard
    clip_path: str | None = None  # a local HF CLIP checkpoint dir (CLIP-I); None -> non-standard
    fallback_dim: int = 64  # feature size of the random-projection fallback extractor
    fallback_seed: int = 0
    batch_size: int = 32

    def __post_init__(self):
        if self.fallback_dim < 1:
            raise ValueError(f"fallback_dim must be >= 1 (got {self.fallback_dim})")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (got {self.batch_size})")


def build_extractor(kind: str, config: ImageEvalConfig | Mapping | None = None,
                    encoder: Callable | None = None, encoder_name: str = "mini-setok-encoder") -> Extractor:
    """The extractor for ``kind`` in {"fid", "clip"}: the standard one when its path is configured, else
    ``encoder`` (wrapped, non-standard) if given, else the random-projection CNN (non-standard)."""
    from setok.config import build

    if kind not in ("fid", "clip"):
        raise ValueError(f"kind must be 'fid' or 'clip' (got {kind!r})")
    if not isinstance(config, ImageEvalConfig):
        config = build(ImageEvalConfig, dict(config or {}), where="eval_image")
    if kind == "fid" and config.inception_path:
        return InceptionExtractor(config.inception_path)
    if kind == "clip" and config.clip_path:
        return ClipImageExtractor(config.clip_path)
    if encoder is not None:
        return EncoderExtractor(encoder, encoder_name)
    return RandomConvExtractor(config.fallback_dim, config.fallback_seed)


def extract_features(extractor: Extractor, images: Any, batch_size: int = 32,
                     name: str = "images") -> np.ndarray:
    """Features (N, D) float64 of a set of images, in batches of same-sized images."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
    ims = _image_list(images, name)
    if not ims:
        raise ValueError(f"{name} is empty")
    feats, i = [], 0
    with tqdm(total=len(ims), desc=f"features ({extractor.name})", disable=len(ims) <= 4 * batch_size) as bar:
        while i < len(ims):
            j = i + 1
            while j < len(ims) and j - i < batch_size and ims[j].shape == ims[i].shape:
                j += 1
            feats.append(torch.as_tensor(extractor(torch.stack(ims[i:j]))).double().cpu())  # (b, D)
            bar.update(j - i)
            i = j
    return torch.cat(feats).numpy()


def _label(extractor: Extractor) -> dict[str, Any]:
    return {"extractor": extractor.name, "standard": bool(extractor.standard)}


# ------------------------------------------------------------------------------------------- FID
def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017; SPEC §5.1).

    ``||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^{1/2})``. Numerical guard: if the
    matrix square root is not finite or scipy flags it as singular (e.g. fewer samples than dimensions),
    ``eps * I`` is added to both covariances (also inside the traces, unlike pytorch-fid, so that identical
    sets still give 0). A complex square root whose diagonal has an imaginary part above 1e-3
    is an error (ill-conditioned covariances); a smaller one is rounding and is dropped.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes must be mu (D,), sigma (D, D) with one D (got mu1 {mu1.shape}, "
                         f"mu2 {mu2.shape}, sigma1 {s1.shape}, sigma2 {s2.shape})")
    for name, a in (("mu1", mu1), ("mu2", mu2), ("sigma1", s1), ("sigma2", s2)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} has non-finite values")
    diff = mu1 - mu2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
    if caught or not np.all(np.isfinite(covmean)):
        # guard: a singular product; regularise both covariances (and their traces, so identical sets stay 0)
        s1, s2 = s1 + np.eye(d) * eps, s2 + np.eye(d) * eps
        covmean = linalg.sqrtm(s1 @ s2)
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(np.diagonal(covmean).imag))
        if imag > 1e-3:
            raise ValueError(f"sqrtm(sigma1 @ sigma2) has an imaginary component {imag:.3g}: the covariances "
                             "are ill-conditioned (use more samples than feature dimensions)")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def gaussian_stats(features: Any, name: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D); N >= 2."""
    f = np.asarray(features.detach().cpu() if hasattr(features, "detach") else features, np.float64)
    if f.ndim != 2:
        raise ValueError(f"{name} must be (N, D) (got shape {f.shape})")
    if f.shape[0] < 2:
        raise ValueError(f"{name}: FID needs at least 2 samples (got {f.shape[0]})")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def fid_from_features(feats1: Any, feats2: Any) -> float:
    """FID between two feature sets (N1, D) and (N2, D) (SPEC §5.1)."""
    mu1, s1 = gaussian_stats(feats1, "feats1")
    mu2, s2 = gaussian_stats(feats2, "feats2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"feature sizes differ (got D={mu1.shape[0]} and D={mu2.shape[0]})")
    return frechet_distance(mu1, s1, mu2, s2)


def fid(preds: Any, refs: Any, extractor: Extractor | None = None, batch_size: int = 32) -> dict[str, Any]:
    """Text-to-image FID between generated and reference image sets (unpaired) (SPEC §5.1).

    Returns ``{"fid", "num_pred", "num_ref", "feature_dim", "extractor", "standard"}``; with ``extractor=None`` the
    non-standard random-projection CNN is used.
    """
    extractor = extractor or RandomConvExtractor()
    f1 = extract_features(extractor, preds, batch_size, "preds")
    f2 = extract_features(extractor, refs, batch_size, "refs")
    # feature_dim beside the counts: with fewer samples than dimensions the covariances are singular (guarded)
    return {"fid": fid_from_features(f1, f2), "num_pred": len(f1), "num_ref": len(f2), "feature_dim": f1.shape[1],
            **_label(extractor)}


# ------------------------------------------------------------------------------------------- CLIP-I and L1
def clip_i(preds: Any, refs: Any, extractor: Extractor | None = None, batch_size: int = 32) -> dict[str, Any]:
    """CLIP-I: mean cosine similarity of paired image embeddings, x100 (SPEC §5.1); 100 for identical images.

    ``preds`` and ``refs`` pair up by position, or by id when both are mappings. Returns
    ``{"clip_i", "num", "extractor", "standard"}``.
    """
    extractor = extractor or RandomConvExtractor()
    p, r = _paired(preds, refs)
    e1 = torch.from_numpy(extract_features(extractor, p, batch_size, "preds"))
    e2 = torch.from_numpy(extract_features(extractor, r, batch_size, "refs"))
    cos = F.cosine_similarity(e1, e2, dim=-1, eps=1e-12)  # (N,)
    return {"clip_i": 100.0 * float(cos.mean()), "num": len(p), **_label(extractor)}


def editing_l1(preds: Any, refs: Any, mode: str = "bicubic") -> dict[str, Any]:
    """MagicBrush L1: resize each prediction to its reference's size, mean |pred - ref| over pixels in [0, 1],
    averaged over images, x100 as the paper prints it (SPEC §5.1). Returns ``{"l1", "num"}``."""
    p, r = _paired(preds, refs)
    errors = [float((resize(a, tuple(b.shape[-2:]), mode) - b).abs().mean())  # one image: mean over 3HW
              for a, b in zip(p, r, strict=True)]
    return {"l1": 100.0 * float(np.mean(errors)), "num": len(errors)}


def edit_scores(preds: Any, targets: Any = None, inputs: Any = None, benchmark: str = "magicbrush",
                reference: str | None = None, extractor: Extractor | None = None,
                batch_size: int = 32) -> dict[str, Any]:
    """Editing L1 and CLIP-I against the benchmark's reference image (SPEC §5.1).

    ``reference`` defaults per benchmark (:data:`EDIT_REFERENCE`): MagicBrush and EVR compare with
    ``targets``, Emu-Edit with ``inputs``. Returns ``{"l1", "clip_i", "num", "reference", "benchmark",
    "extractor", "standard"}``.
    """
    if benchmark not in EDIT_REFERENCE:
        raise ValueError(f"unknown editing benchmark {benchmark!r}; choose one of {sorted(EDIT_REFERENCE)}")
    reference = reference or EDIT_REFERENCE[benchmark]
    if reference not in ("target", "input"):
        raise ValueError(f"reference must be 'target' or 'input' (got {reference!r})")
    refs = targets if reference == "target" else inputs
    if refs is None:
        raise ValueError(f"{benchmark} compares with the {reference} image: pass {reference}s=...")
    out = editing_l1(preds, refs)
    out.update(clip_i(preds, refs, extractor, batch_size))
    return {**out, "reference": reference, "benchmark": benchmark}
