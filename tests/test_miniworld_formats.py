"""The mini world on disk (SPEC §6): pycocotools round trip and the real datasets' layouts and field names."""

import argparse
import json
import pickle

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from setok.data import cli
from setok.data.miniworld import HELD_OUT_PAIRS, make_example
from setok.data.miniworld.writers import write_miniworld

N, RES = 6, 32


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    root = tmp_path_factory.mktemp("miniworld")
    write_miniworld(root, "train", N, RES, progress=False)
    write_miniworld(root, "compositional", 3, RES, progress=False)
    return root


def test_coco_instances_round_trip(out):
    coco = COCO(str(out / "coco/annotations/instances_train.json"))
    assert sorted(c["name"] for c in coco.loadCats(coco.getCatIds())) == sorted(
        ["circle", "square", "triangle", "diamond", "pentagon", "hexagon", "star", "cross"])
    assert len(coco.getImgIds()) == N
    for index in range(N):
        scene, rendered = make_example("train", index, 0, RES)
        img = coco.loadImgs(scene["image_id"])[0]
        pixels = np.asarray(Image.open(out / "coco/train" / img["file_name"]))
        np.testing.assert_array_equal(pixels, np.rint(rendered.image * 255).astype(np.uint8))
        anns = sorted(coco.loadAnns(coco.getAnnIds(imgIds=scene["image_id"])), key=lambda a: a["depth"])
        assert len(anns) == len(scene["objects"])
        for ann, obj, mask in zip(anns, scene["objects"], rendered.masks, strict=True):
            np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), mask)
            assert coco.cats[ann["category_id"]]["name"] == obj["shape"]
            assert ann["area"] == mask.sum() and ann["attributes"]["colour"] == obj["colour"]
            ys, xs = np.nonzero(mask)
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_coco_captions_round_trip(out):
    caps = COCO(str(out / "coco/annotations/captions_train.json"))
    for image_id in caps.getImgIds():
        texts = [a["caption"] for a in caps.loadAnns(caps.getAnnIds(imgIds=image_id))]
        assert len(texts) == 5 and len(set(texts)) == 5 and all(texts)


def test_vqa_gqa_pope_files(out):
    qs = json.loads((out / "vqav2/v2_OpenEnded_mscoco_train_questions.json").read_text())
    an = json.loads((out / "vqav2/v2_mscoco_train_annotations.json").read_text())
    assert {q["question_id"] for q in qs["questions"]} == {a["question_id"] for a in an["annotations"]}
    for a in an["annotations"]:
        assert len(a["answers"]) == 10 and {x["answer"] for x in a["answers"]} == {a["multiple_choice_answer"]}
        assert a["answer_type"] in ("yes/no", "number", "other")
    gqa = json.loads((out / "gqa/train_balanced_questions.json").read_text())
    assert len(gqa) == len(qs["questions"])
    for rec in gqa.values():
        assert (out / "coco/train" / f"{rec['imageId']}.png").is_file() and rec["isBalanced"]
        assert {"question", "answer", "fullAnswer", "types", "semantic"} <= set(rec)
    for strategy in ("random", "popular", "adversarial"):
        lines = (out / f"pope/train/coco_pope_{strategy}.json").read_text().splitlines()
        recs = [json.loads(line) for line in lines]
        assert all(set(r) == {"question_id", "image", "text", "label"} for r in recs)
        assert all((out / "coco/train" / r["image"]).is_file() for r in recs)


def test_refcoco_llava_ip2p_t2i_files(out):
    refs = pickle.loads((out / "refcoco/refs(unc).p").read_bytes())
    coco = COCO(str(out / "refcoco/instances.json"))
    assert {r["split"] for r in refs} == {"train", "compositional"}
    for r in refs:
        assert r["ann_id"] in coco.anns and coco.anns[r["ann_id"]]["image_id"] == r["image_id"]
        assert r["sent_ids"] == [s["sent_id"] for s in r["sentences"]] and r["sentences"][0]["tokens"]
    for name in ("llava_v1_5_mix_train.json", "blip_laion_cc_sbu_train.json"):
        recs = json.loads((out / "llava" / name).read_text())
        for r in recs:
            assert r["conversations"][0]["from"] == "human" and r["conversations"][1]["from"] == "gpt"
            for key in ("image", "target_image"):
                assert key not in r or (out / r[key]).is_file()
            if "image" in r:
                assert r["conversations"][0]["value"].startswith("<image>\n")
    seeds = json.loads((out / "instructpix2pix/train/seeds.json").read_text())
    assert len(seeds) == N
    for folder, (seed,) in seeds:
        d = out / "instructpix2pix/train" / folder
        prompt = json.loads((d / "prompt.json").read_text())
        assert {"input", "edit", "output"} <= set(prompt) and prompt["input"] != prompt["output"] or \
            prompt["kind"] == "move"
        a, b = (np.asarray(Image.open(d / f"{seed}_{k}.png")) for k in (0, 1))
        assert a.shape == b.shape == (RES, RES, 3) and (a != b).any()
    t2i = json.loads((out / "t2i/train_prompts.json").read_text())
    assert len(t2i) == N and all((out / r["image"]).is_file() and r["prompt"] for r in t2i)
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["splits"]) == {"train", "compositional"}


def test_compositional_pairs_never_in_written_train(out):
    coco = COCO(str(out / "coco/annotations/instances_train.json"))
    pairs = {(coco.cats[a["category_id"]]["name"], a["attributes"]["colour"]) for a in coco.anns.values()}
    assert not pairs & HELD_OUT_PAIRS
    comp = COCO(str(out / "coco/annotations/instances_compositional.json"))
    for image_id in comp.getImgIds():
        anns = comp.loadAnns(comp.getAnnIds(imgIds=image_id))
        assert {(comp.cats[a["category_id"]]["name"], a["attributes"]["colour"]) for a in anns} & HELD_OUT_PAIRS


def test_cli_writes_all_formats(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "miniworld", "--out", str(tmp_path), "--split", "val", "--n", "2",
                              "--resolution", "32"])
    assert args.func(args) == 0
    assert "val: images 2" in capsys.readouterr().out
    for rel in ("coco/annotations/instances_val.json", "coco/annotations/captions_val.json",
                "vqav2/v2_OpenEnded_mscoco_val_questions.json", "vqav2/v2_mscoco_val_annotations.json",
                "gqa/val_balanced_questions.json", "pope/val/coco_pope_adversarial.json", "refcoco/refs(unc).p",
                "refcoco/instances.json", "instructpix2pix/val/seeds.json", "t2i/val_prompts.json",
                "llava/llava_v1_5_mix_val.json", "llava/blip_laion_cc_sbu_val.json", "manifest.json"):
        assert (tmp_path / rel).is_file(), rel


def test_writer_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        write_miniworld(tmp_path, "train", 0)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        write_miniworld(tmp_path, "dev", 2)
    with pytest.raises(ValueError, match="resolution must be an integer >= 16"):
        write_miniworld(tmp_path, "train", 2, resolution=4)
