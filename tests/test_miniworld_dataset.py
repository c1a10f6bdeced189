"""The mini world's scenes, renderer and torch Dataset (SPEC §6): determinism, masks, occlusion, collate."""

import numpy as np
import pytest
import torch

from setok.data.miniworld import (
    HELD_OUT_PAIRS,
    MiniWorldDataset,
    collate,
    render_scene,
    sample_scene,
)
from setok.data.miniworld.render import colour_rgb
from setok.data.miniworld.scene import shape_mask


def test_same_seed_and_index_give_identical_bytes():
    a = MiniWorldDataset("train", n=4, resolution=32, seed=0)[2]
    b = MiniWorldDataset("train", n=4, resolution=32, seed=0)[2]
    assert a["pixel_values"].numpy().tobytes() == b["pixel_values"].numpy().tobytes()
    assert torch.equal(a["masks"], b["masks"]) and a["scene"] == b["scene"] and a["caption"] == b["caption"]


def test_different_index_seed_or_split_differ():
    base = MiniWorldDataset("train", n=4, resolution=32, seed=0)[1]["pixel_values"]
    for other in (MiniWorldDataset("train", n=4, resolution=32, seed=0)[2],
                  MiniWorldDataset("train", n=4, resolution=32, seed=1)[1],
                  MiniWorldDataset("val", n=4, resolution=32, seed=0)[1]):
        assert not torch.equal(base, other["pixel_values"])


def test_scene_graph_is_resolution_free():
    scene = sample_scene("train", 5, 0)
    small, large = render_scene(scene, 32), render_scene(scene, 64)
    # box-averaging the 64 px image gives (nearly) the 32 px one: same scene, twice the sampling
    down = large.image.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))
    assert np.abs(down - small.image).mean() < 0.03


@pytest.mark.parametrize("index", range(6))
def test_masks_recompose_the_image_and_respect_depth(index):
    scene = sample_scene("test", index, 0)
    r = render_scene(scene, 48)
    objects = scene["objects"]
    # the image is exactly the weighted sum of the background and the object colours
    recomposed = r.background * (1 - r.weights.sum(0))[..., None]
    recomposed = recomposed + sum(r.weights[i][..., None] * colour_rgb(o["colour"]) for i, o in enumerate(objects))
    np.testing.assert_allclose(np.clip(recomposed, 0, 1), r.image, atol=1e-5)
    # masks are disjoint, equal the label map, and sit inside each object's own shape
    assert r.masks.sum(0).max() <= 1
    np.testing.assert_array_equal(r.masks.argmax(0) + r.masks.any(0), r.labels)
    for i, obj in enumerate(objects):
        full = r.alpha[i] > 0
        assert not (r.masks[i] & ~full).any()
        # fully covered visible pixels have exactly the object's colour
        solid = r.masks[i] & (r.weights[i] == 1)
        np.testing.assert_allclose(r.image[solid], np.broadcast_to(colour_rgb(obj["colour"]), (solid.sum(), 3)),
                                   atol=1e-6)
        # occlusion: where a nearer object fully covers the pixel, object i is never the label
        for j in range(i + 1, len(objects)):
            assert not (r.masks[i] & (r.alpha[j] == 1)).any()


def test_hard_masks_match_a_naive_pixel_loop():
    scene = sample_scene("train", 11, 0)
    res = 32
    r = render_scene(scene, res)
    # naive: the nearest object whose shape covers the pixel centre (4x supersampled, majority)
    hard = [shape_mask(o, res * 4, res * 4) for o in scene["objects"]]
    agree = 0
    for y in range(res):
        for x in range(res):
            label = 0
            for i in range(len(hard) - 1, -1, -1):
                if hard[i][4 * y:4 * y + 4, 4 * x:4 * x + 4].all():
                    label = i + 1
                    break
            if label:
                agree += r.labels[y, x] == label
                assert r.labels[y, x] == label, (y, x)
    assert agree > 0


def test_compositional_split_holds_out_pairs():
    seen_train = {(o["shape"], o["colour"]) for i in range(150) for o in sample_scene("train", i, 0)["objects"]}
    assert not seen_train & HELD_OUT_PAIRS
    for i in range(20):
        pairs = {(o["shape"], o["colour"]) for o in sample_scene("compositional", i, 0)["objects"]}
        assert pairs & HELD_OUT_PAIRS


def test_every_object_is_visible_and_counts_cover_one_to_eight():
    counts = set()
    for i in range(120):
        item = MiniWorldDataset("train", n=120, resolution=32)[i]
        counts.add(len(item["scene"]["objects"]))
        assert item["masks"].flatten(1).any(1).all()
        assert [o["area"] for o in item["scene"]["objects"]] == item["masks"].flatten(1).sum(1).tolist()
    assert counts == set(range(1, 9))


def test_item_contract_and_collate_pads_masks():
    ds = MiniWorldDataset("val", n=6, resolution=32)
    items = [ds[i] for i in range(6)]
    it = items[0]
    assert it["pixel_values"].dtype == torch.float32 and it["pixel_values"].shape == (3, 32, 32)
    assert 0 <= it["pixel_values"].min() and it["pixel_values"].max() <= 1
    assert it["labels"].dtype == torch.long and it["masks"].dtype == torch.bool
    assert it["masks"].shape[0] == len(it["scene"]["objects"]) and isinstance(it["caption"], str)
    batch = collate(items)
    m = max(x["masks"].shape[0] for x in items)
    assert batch["masks"].shape == (6, m, 32, 32) and batch["mask_valid"].shape == (6, m)
    for k, x in enumerate(items):
        n = x["masks"].shape[0]
        assert batch["mask_valid"][k].tolist() == [True] * n + [False] * (m - n)
        assert torch.equal(batch["masks"][k, :n], x["masks"]) and not batch["masks"][k, n:].any()
        assert torch.equal(batch["labels"][k], x["labels"])
    assert batch["index"].tolist() == list(range(6))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        MiniWorldDataset(n=0)
    with pytest.raises(ValueError, match="resolution must be an integer >= 16"):
        MiniWorldDataset(resolution=8)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        MiniWorldDataset(split="dev")
    with pytest.raises(ValueError, match="max_objects must be in"):
        MiniWorldDataset(max_objects=9)
    with pytest.raises(IndexError, match="out of range"):
        MiniWorldDataset(n=2)[2]
    with pytest.raises(ValueError, match="non-empty batch"):
        collate([])


def test_config_sections_and_bad_values():
    from setok.data.miniworld.config import MiniWorldConfig, from_profile

    assert from_profile("smoke").resolution == 32 and from_profile("mini").resolution == 64
    with pytest.raises(ValueError, match="data.miniworld.resolution must be >= 16"):
        MiniWorldConfig(resolution=8)
    with pytest.raises(ValueError, match="data.miniworld.n_val must be >= 1"):
        MiniWorldConfig(n_val=0)
    with pytest.raises(ValueError, match="unknown config key"):
        from_profile("smoke", ["data.miniworld.colours=3"])


def test_scene_graphs_are_pinned_across_machines():
    # numpy's SeedSequence + PCG64 streams are specified bit for bit, so these graphs are the same everywhere.
    scene = sample_scene("train", 0, 0)
    assert scene["background"] == {"kind": "photo", "photo": "brick", "size": 0.435, "top": 0.041, "left": 0.017}
    got = [(o["shape"], o["colour"], o["size"], o["x"], o["y"], o["angle"]) for o in scene["objects"]]
    assert got == [("star", "cyan", "large", 0.5704, 0.6515, 1.05), ("pentagon", "white", "small", 0.0873, 0.7966,
                                                                       -11.19)]
    comp = sample_scene("compositional", 7, 3)
    assert [(o["shape"], o["colour"]) for o in comp["objects"]] == [("square", "orange"), ("hexagon", "cyan")]
    assert ("square", "orange") in HELD_OUT_PAIRS
