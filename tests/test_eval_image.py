"""setok.eval.image: FID, CLIP-I and editing L1 against closed forms and hand-worked cases (SPEC §5.1)."""

import doctest
import importlib.util

import numpy as np
import pytest
import torch
from scipy.linalg import eigh

import setok.eval.image as image
from setok.eval.image import (
    ClipImageExtractor,
    EncoderExtractor,
    InceptionExtractor,
    RandomConvExtractor,
    build_extractor,
    clip_i,
    edit_scores,
    editing_l1,
    fid,
    fid_from_features,
    frechet_distance,
    gaussian_stats,
    to_image,
)


def _psd_sqrt(a):
    w, v = eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _closed_form(mu1, s1, mu2, s2):
    """Fréchet distance via the symmetric form tr((S1^1/2 S2 S1^1/2)^1/2), independent of sqrtm(S1 S2)."""
    r = _psd_sqrt(s1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(_psd_sqrt(r @ s2 @ r)))


def _random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_module_worked_example_runs():
    assert doctest.testmod(image).failed == 0


def test_frechet_distance_closed_forms():
    # 1-D: (m1 - m2)^2 + (sd1 - sd2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    # diagonal: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 16.0])
    expected = 3 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(np.zeros(3), np.diag(a), np.ones(3), np.diag(b)) == pytest.approx(expected)
    # general, non-commuting covariances
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = _random_cov(rng, 5), _random_cov(rng, 5)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_closed_form(mu1, s1, mu2, s2), rel=1e-8)


def test_fid_from_samples_approaches_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, -1.0])
    s1, s2 = _random_cov(rng, 3), _random_cov(rng, 3)
    x = rng.multivariate_normal(mu1, s1, size=20000)
    y = rng.multivariate_normal(mu2, s2, size=20000)
    assert fid_from_features(x, y) == pytest.approx(_closed_form(mu1, s1, mu2, s2), abs=0.05)


def test_fid_identical_is_zero_and_grows_with_shift():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 8))
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-6)
    values = [fid_from_features(x, x + shift) for shift in (0.0, 0.1, 0.5, 1.0, 2.0)]
    assert all(b > a for a, b in zip(values, values[1:], strict=False))
    assert values[-1] == pytest.approx(8 * 2.0**2, rel=1e-6)  # a pure mean shift adds |shift|^2 per dim


def test_fid_numerical_guard_fewer_samples_than_dims():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 20)), rng.normal(size=(5, 20))  # rank-4 covariances
    value = fid_from_features(x, y)
    assert np.isfinite(value)
    mu1, s1 = gaussian_stats(x)
    np.testing.assert_allclose(s1, np.cov(x.T))


def test_fid_on_images_identical_zero_and_labelled():
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(12, 3, 32, 32, generator=g)
    out = fid(imgs, imgs)
    assert out["fid"] == pytest.approx(0.0, abs=1e-5)
    assert out["standard"] is False and out["extractor"].startswith("random-conv")
    darker = fid(imgs, imgs * 0.5)
    assert darker["fid"] > 1e-3
    assert out["num_pred"] == 12 and out["num_ref"] == 12 and out["feature_dim"] == 64


def test_clip_i_identical_is_one_with_fallback_and_encoder():
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(3, 3, 24, 24, generator=g)
    assert clip_i(imgs, imgs.clone())["clip_i"] == pytest.approx(100.0, abs=1e-4)
    from transformers import SiglipVisionConfig, SiglipVisionModel

    enc = SiglipVisionModel(SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                               num_attention_heads=2, image_size=16, patch_size=4)).eval()
    ext = EncoderExtractor(enc, "tiny-siglip")
    out = clip_i({"a": imgs[0], "b": imgs[1]}, {"b": imgs[1], "a": imgs[0]}, ext)  # paired by id
    assert out["clip_i"] == pytest.approx(100.0, abs=1e-4)
    assert out["extractor"] == "tiny-siglip" and out["standard"] is False
    assert clip_i(imgs[:2], imgs[[1, 0]], ext)["clip_i"] < 100.0


def test_clip_extractor_from_local_checkpoint(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                           image_size=30, patch_size=6, projection_dim=16)
    torch.manual_seed(0)
    CLIPVisionModelWithProjection(cfg).save_pretrained(tmp_path / "tiny-clip")
    ext = build_extractor("clip", {"clip_path": str(tmp_path / "tiny-clip")})
    assert isinstance(ext, ClipImageExtractor) and ext.standard
    imgs = torch.rand(2, 3, 40, 50)
    feats = ext(imgs)
    assert feats.shape == (2, 16)
    out = clip_i(imgs, imgs, ext)
    assert out["clip_i"] == pytest.approx(100.0, abs=1e-4) and out["standard"] is True
    assert out["extractor"] == "clip:tiny-clip"


def test_build_extractor_fallbacks_and_missing_paths(tmp_path):
    assert isinstance(build_extractor("fid"), RandomConvExtractor)
    assert isinstance(build_extractor("fid", {"fallback_dim": 8}), RandomConvExtractor)
    with pytest.raises(FileNotFoundError, match="eval_image.inception_path.*nowhere"):
        build_extractor("fid", {"inception_path": str(tmp_path / "nowhere.pth")})
    with pytest.raises(FileNotFoundError, match="eval_image.clip_path"):
        build_extractor("clip", {"clip_path": str(tmp_path / "nowhere")})
    with pytest.raises(ValueError, match="unknown config key"):
        build_extractor("fid", {"inception": "x"})
    with pytest.raises(ValueError, match="kind"):
        build_extractor("dino")


@pytest.mark.skipif(importlib.util.find_spec("torch_fidelity") is not None, reason="torch-fidelity present")
def test_inception_extractor_needs_torch_fidelity(tmp_path):
    weights = tmp_path / "pt_inception-2015-12-05.pth"
    weights.write_bytes(b"")
    with pytest.raises(ImportError, match="torch-fidelity"):
        InceptionExtractor(weights)


def test_editing_l1_hand_worked_with_resize():
    target = np.zeros((4, 4, 3), dtype=np.uint8)  # HWC uint8: 0 everywhere, 255 in the left half
    target[:, :2] = 255
    pred = torch.full((3, 2, 2), 0.25)  # constant images survive any resize exactly
    assert editing_l1([pred], [target])["l1"] == pytest.approx(100 * (0.75 + 0.25) / 2)
    # nearest resize of a 2x2 checker to 4x4 reproduces 2x2 blocks: L1 = 0 against the upsampled target
    small = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).expand(3, 2, 2)
    big = small.repeat_interleave(2, 1).repeat_interleave(2, 2)
    assert editing_l1([small], [big], mode="nearest")["l1"] == pytest.approx(0.0)
    # two images: the mean of the per-image errors
    assert editing_l1([pred, big], [target, big])["l1"] == pytest.approx(25.0)


def test_edit_scores_reference_switch():
    inputs = torch.zeros(2, 3, 8, 8)
    targets = torch.ones(2, 3, 8, 8)
    preds = torch.ones(2, 3, 8, 8)
    mb = edit_scores(preds, targets=targets, inputs=inputs, benchmark="magicbrush")
    emu = edit_scores(preds, targets=targets, inputs=inputs, benchmark="emu-edit")
    assert mb["reference"] == "target" and mb["l1"] == pytest.approx(0.0)
    assert emu["reference"] == "input" and emu["l1"] == pytest.approx(100.0)
    assert edit_scores(preds, inputs=inputs, benchmark="evr", reference="input")["l1"] == pytest.approx(100.0)
    assert mb["clip_i"] == pytest.approx(100.0) and mb["standard"] is False


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2 samples"):
        fid_from_features(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="feature sizes differ"):
        fid_from_features(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        gaussian_stats(np.zeros(3))
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="non-finite"):
        frechet_distance([np.nan], [[1.0]], [0.0], [[1.0]])
    with pytest.raises(ValueError, match="is empty"):
        fid([], torch.rand(3, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        to_image(torch.full((3, 4, 4), 2.0))
    with pytest.raises(ValueError, match="uint8"):
        to_image(np.zeros((3, 4, 4), dtype=np.int32))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        to_image(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="pair up"):
        editing_l1(torch.rand(2, 3, 4, 4), torch.rand(3, 3, 4, 4))
    with pytest.raises(ValueError, match="ids differ"):
        clip_i({"a": torch.rand(3, 4, 4)}, {"b": torch.rand(3, 4, 4)})
    with pytest.raises(ValueError, match="no images"):
        editing_l1([], [])
    with pytest.raises(ValueError, match="unknown editing benchmark"):
        edit_scores(torch.rand(1, 3, 4, 4), targets=torch.rand(1, 3, 4, 4), benchmark="magic")
    with pytest.raises(ValueError, match="pass inputs"):
        edit_scores(torch.rand(1, 3, 4, 4), targets=torch.rand(1, 3, 4, 4), benchmark="emu-edit")
    with pytest.raises(ValueError, match="reference must be"):
        edit_scores(torch.rand(1, 3, 4, 4), targets=torch.rand(1, 3, 4, 4), reference="both")
    with pytest.raises(ValueError, match="batch_size"):
        fid(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), batch_size=0)
    with pytest.raises(ValueError, match="dim must be"):
        RandomConvExtractor(dim=0)
