"""Integration: the mini-world writers (datagen) read back by the real-dataset loaders, unchanged (SPEC §6)."""

import json

import numpy as np
import pytest

from setok.cli import main
from setok.data.loaders import load_miniworld, loader_table, miniworld_paths
from setok.data.miniworld.dataset import make_example
from setok.data.miniworld.render import to_uint8
from setok.data.miniworld.writers import write_miniworld

RES, SEED = 32, 0


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("miniworld")
    manifests = {
        s: write_miniworld(root, split=s, n=n, resolution=RES, seed=SEED, progress=False)
        for s, n in (("train", 3), ("val", 2))
    }
    return root, manifests


@pytest.mark.parametrize("split", ["train", "val"])
def test_every_format_reads_cleanly_with_the_written_counts(world, split):
    root, manifests = world
    data = load_miniworld(root, split)  # on_error="raise": any malformed record fails here
    counts = manifests[split]["counts"]
    assert set(data) == set(miniworld_paths(root, split))
    assert len(data["coco_captions"]) == len(data["coco_instances"]) == counts["images"]
    assert sum(len(r.captions) for r in data["coco_captions"]) == counts["captions"]
    assert sum(len(r.annotations) for r in data["coco_instances"]) == counts["instances"]
    assert len(data["vqav2"]) == len(data["gqa"]) == counts["questions"]
    assert len(data["refcoco"]) == counts["refs"]
    assert len(data["instructpix2pix"]) == counts["edits"]
    assert len(data["llava_instruct"]) == counts["llava_mix"]
    assert len(data["llava_pretrain"]) == counts["llava_pretrain"]
    for variant in ("random", "popular", "adversarial"):
        assert len(data[f"pope_{variant}"]) == counts["pope"][variant]
    assert all(recs.report.skipped == 0 for recs in data.values())


def test_pixels_and_masks_round_trip_against_the_generator(world):
    root, _ = world
    data = load_miniworld(root, "train")
    for index, img in enumerate(data["coco_instances"]):
        scene, rendered = make_example("train", index, SEED, RES)
        assert img.image_id == scene["image_id"]
        np.testing.assert_array_equal(np.asarray(img.open_image()), to_uint8(rendered.image))  # PNG: exact
        assert len(img.annotations) == len(scene["objects"])
        for i, ann in enumerate(img.annotations):  # written in depth order, one per object
            np.testing.assert_array_equal(ann.mask().astype(bool), rendered.masks[i])
            assert ann.category == scene["objects"][i]["shape"]


def test_answers_and_refs_are_consistent_across_formats(world):
    root, _ = world
    data = load_miniworld(root, "train")
    qids = [q.question_id for q in data["vqav2"]]
    assert len(set(qids)) == len(qids)
    gqa = {g.question_id: g for g in data["gqa"]}
    for q in data["vqav2"]:
        assert len(q.answers) == 10 and set(q.answers) == {q.multiple_choice_answer}
        assert gqa[str(q.question_id)].answer == q.multiple_choice_answer
        assert gqa[str(q.question_id)].image_path == q.image_path
    anns = {a.id: a for img in data["coco_instances"] for a in img.annotations}
    for ref in data["refcoco"]:
        assert ref.bbox == anns[ref.ann_id].bbox and ref.split == "train"
        np.testing.assert_array_equal(ref.mask(), anns[ref.ann_id].mask())
    for probe in data["pope_random"]:
        assert probe.label in ("yes", "no") and probe.image_path.is_file()


def test_edits_start_from_the_coco_image(world):
    root, _ = world
    data = load_miniworld(root, "train")
    coco = {img.image_id: img for img in data["coco_captions"]}
    for edit in data["instructpix2pix"]:
        image_id = int(edit.input_path.stem.split("_")[0])
        assert np.array_equal(np.asarray(edit.open_input()), np.asarray(coco[image_id].open_image()))
        assert edit.instruction and edit.input_caption
    tasks = {r.extra.get("task") for r in data["llava_instruct"]}
    assert {"understanding", "edit", "t2i"} <= tasks
    edits = [r for r in data["llava_instruct"] if r.extra.get("task") == "edit"]
    assert all(r.target_path.is_file() for r in edits)


def test_missing_split_names_the_file(world):
    root, _ = world
    with pytest.raises(FileNotFoundError, match="captions_test.json"):
        load_miniworld(root, "test")


def test_doctor_roundtrip_at_mini(capsys):
    assert main(["doctor", "--profile", "smoke", "--roundtrip"]) == 0
    out = capsys.readouterr().out
    assert "nothing external is needed" in out and "read back: coco_captions" in out


def test_manifest_lists_the_files_the_loaders_read(world):
    root, _ = world
    files = json.loads((root / "manifest.json").read_text())["splits"]["train"]["files"]
    paths = miniworld_paths(root, "train")
    assert root / files["coco_captions"] == paths["coco_captions"]["captions_file"]
    assert root / files["llava_mix"] == paths["llava_instruct"]["json_file"]
    assert root / files["pope_adversarial"] == paths["pope_adversarial"]["pope_file"]


def test_loader_table_names_real_and_mini_files(world):
    root, _ = world
    rows = {r["format"]: r for r in loader_table(root, "val")}
    assert rows["coco_captions"]["mini world"] == "coco/annotations/captions_val.json"
    assert rows["refcoco"]["loader"] == "load_refcoco()" and "refs(unc).p" in rows["refcoco"]["real dataset"]
    assert rows["pope_popular"]["mini world"] == "pope/val/coco_pope_popular.json"


def test_cli_written_splits_read_back(tmp_path, capsys):
    """``setok data miniworld --split all`` then every split through the loaders (incl. the held-out one)."""
    assert main(["data", "miniworld", "--out", str(tmp_path), "--split", "all", "--n", "2", "--resolution", "32"]) == 0
    capsys.readouterr()
    for split in ("train", "val", "test", "compositional"):
        data = load_miniworld(tmp_path, split)
        assert len(data["coco_instances"]) == 2 and all(r.report.skipped == 0 for r in data.values())
        assert {r.split for r in data["refcoco"]} == {split}
