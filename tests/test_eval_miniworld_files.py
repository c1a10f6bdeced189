"""`setok eval score` reads the mini world's files, written in the real datasets' formats (SPEC §6): ground truth
scored against itself gives the maximum, and a blind baseline gives what can be worked out from the labels."""

import json

import pytest

from setok.cli import main
from setok.data.miniworld.writers import write_miniworld


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("mw")
    write_miniworld(out, split="val", n=4, resolution=32, seed=0)
    return out


def _score(capsys, *args):
    assert main(["eval", "score", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_vqav2_gqa_pope_captions_from_miniworld_files(world, tmp_path, capsys):
    anns = world / "vqav2" / "v2_mscoco_val_annotations.json"
    gt = [{"question_id": a["question_id"], "answer": a["multiple_choice_answer"]}
          for a in json.loads(anns.read_text())["annotations"]]
    (tmp_path / "vqa.json").write_text(json.dumps(gt))
    out = _score(capsys, "--task", "vqav2", "--pred", str(tmp_path / "vqa.json"), "--ref", str(anns))
    assert out["accuracy"] == pytest.approx(100.0) and out["n_questions"] == len(gt)

    gqa = world / "gqa" / "val_balanced_questions.json"
    (tmp_path / "gqa.json").write_text(json.dumps({q: r["answer"] for q, r in json.loads(gqa.read_text()).items()}))
    assert _score(capsys, "--task", "gqa", "--pred", str(tmp_path / "gqa.json"), "--ref", str(gqa))["accuracy"] == 100

    pope = world / "pope" / "val" / "coco_pope_random.json"
    labels = [json.loads(line) for line in pope.read_text().splitlines() if line.strip()]
    (tmp_path / "pope.jsonl").write_text("\n".join(json.dumps({"question_id": r["question_id"], "text": "Yes."})
                                                   for r in labels))
    out = _score(capsys, "--task", "pope", "--pred", str(tmp_path / "pope.jsonl"), "--ref", str(pope))
    share_yes = 100 * sum(r["label"] == "yes" for r in labels) / len(labels)
    assert out["average"]["yes_ratio"] == 100.0 and out["average"]["accuracy"] == pytest.approx(share_yes)
    assert out["average"]["recall"] == 100.0

    caps = world / "coco" / "annotations" / "captions_val.json"
    first = {}
    for a in json.loads(caps.read_text())["annotations"]:
        first.setdefault(a["image_id"], a["caption"])
    (tmp_path / "caps.json").write_text(json.dumps([{"image_id": k, "caption": v} for k, v in first.items()]))
    out = _score(capsys, "--task", "flickr30k", "--pred", str(tmp_path / "caps.json"), "--ref", str(caps),
                 "--tokenizer", "fallback")
    assert out["n_images"] == len(first) and out["CIDEr"] > 0
