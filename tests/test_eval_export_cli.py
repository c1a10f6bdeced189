"""Submission exporters, the transcribed paper tables, the task registry and `setok eval` round trips."""

import json

import pytest

from setok.cli import main
from setok.eval import TASKS, get_scorer
from setok.eval.export import export_gqa, export_nocaps, export_vqav2, write_jsonl, write_submission
from setok.eval.reported import LONG_TABLES, load_table, pivot_reported
from setok.eval.vqa import score_vqa


def test_exporters_formats():
    assert export_vqav2({"7": "yes", 8: "2"}) == [{"question_id": 7, "answer": "yes"},
                                                  {"question_id": 8, "answer": "2"}]
    assert export_gqa({"20968": "left"}) == [{"questionId": "20968", "prediction": "left"}]
    assert export_nocaps({"3": "a dog"}) == [{"image_id": 3, "caption": "a dog"}]
    with pytest.raises(ValueError, match="question_id must be integers; 1 ids are not: 'q1'"):
        export_vqav2({"q1": "yes"})
    with pytest.raises(ValueError, match="no predictions to export"):
        export_gqa({})
    with pytest.raises(ValueError, match="1 predictions are empty or not text: 'x'"):
        export_gqa({"x": " "})
    with pytest.raises(ValueError, match="no official submission format for 'pope'"):
        write_submission("pope", {"1": "yes"}, "x.json")


def test_mmbench_and_mmvet_and_jsonl_files(tmp_path):
    questions = {"5": {"question": "Which?", "options": {"A": "cat", "B": "dog"}, "answer": "B"}}
    path = write_submission("mmbench", {"5": "B"}, tmp_path / "mmbench_dev.xlsx", questions=questions)
    try:
        import openpyxl  # noqa: F401
        assert path.suffix == ".xlsx"
    except ImportError:
        assert path.suffix == ".tsv"
        lines = path.read_text().splitlines()
        assert lines[0].split("\t") == ["index", "question", "answer", "A", "B", "prediction"]
        assert lines[1].split("\t") == ["5", "Which?", "B", "cat", "dog", "B"]
    with pytest.raises(ValueError, match="1 predictions without question"):
        write_submission("mmbench", {"5": "B", "6": "A"}, tmp_path / "m.tsv", questions=questions)
    mmvet = write_submission("mmvet", {"v1_0": "a cat"}, tmp_path / "mmvet.json")
    assert json.loads(mmvet.read_text()) == {"v1_0": "a cat"}
    jl = write_jsonl("pope", {"1": "yes", "2": "no"}, tmp_path / "p.jsonl")
    assert [json.loads(x) for x in jl.read_text().splitlines()] == [
        {"task": "pope", "id": "1", "prediction": "yes"}, {"task": "pope", "id": "2", "prediction": "no"}]


def test_reported_tables():
    t1 = load_table(1)
    row = t1[(t1.method == "SETOKIM") & (t1["size"] == "13B") & (t1.benchmark == "GQA")]
    assert row["value"].item() == 67.2
    wide = pivot_reported(load_table(2))
    assert wide.loc[("SETOKIM", "13B"), ("POPE", "", "score")] == "89.1"
    assert wide.loc[("LLaVA-1.5", "7B"), ("POPE", "", "score")] == "-"
    assert load_table(7).columns[0] == "table"
    for n in LONG_TABLES:  # every printed cell lands in exactly one place of the wide table
        long = load_table(n)
        wide = pivot_reported(long, with_markers=False)
        assert wide.notna().to_numpy().sum() == long["value"].notna().sum()
        assert wide.to_numpy(dtype=float)[wide.notna().to_numpy()].sum() == pytest.approx(long["value"].sum())
    with pytest.raises(ValueError, match="tables 1-9"):
        load_table(10)


def test_registry_is_lazy_and_complete():
    for task in ("vqav2", "okvqa", "vizwiz", "textvqa", "gqa", "vsr", "iconqa", "pope", "mme", "mmbench",
                 "nocaps", "flickr30k"):
        assert callable(get_scorer(task))
    assert {"refcoco", "refcoco+", "refcocog", "reasonseg"} <= set(TASKS)
    with pytest.raises(ValueError, match="export-only"):
        get_scorer("mmvet")
    with pytest.raises(ValueError, match="unknown task 'vqa'"):
        get_scorer("vqa")


def _write(path, obj, jsonl=False):
    path.write_text("\n".join(json.dumps(o) for o in obj) if jsonl else json.dumps(obj))
    return str(path)


def test_cli_vqav2_round_trip(tmp_path, capsys):
    anns = {"annotations": [
        {"question_id": 1, "question_type": "how many", "answer_type": "number",
         "answers": [{"answer": "2", "answer_id": i} for i in range(10)]},
        {"question_id": 2, "question_type": "is the", "answer_type": "yes/no",
         "answers": [{"answer": a, "answer_id": i} for i, a in enumerate(["yes"] * 2 + ["no"] * 8)]}]}
    ref = _write(tmp_path / "refs.json", anns)
    pred = _write(tmp_path / "preds.jsonl", [{"question_id": 1, "answer": "two"}, {"question_id": 2, "answer": "yes"}],
                  jsonl=True)
    out = tmp_path / "metrics.json"
    assert main(["eval", "score", "--task", "vqav2", "--pred", pred, "--ref", ref, "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = score_vqa({"1": "two", "2": "yes"}, {"1": {"answers": ["2"] * 10},
                                                    "2": {"answers": ["yes"] * 2 + ["no"] * 8}})
    assert printed["accuracy"] == pytest.approx(expected["accuracy"]) == pytest.approx(80.0)
    assert json.loads(out.read_text())["per_answer_type"] == {"number": 100.0, "yes/no": 60.0}
    # a missing prediction is an error message and exit code 2, not a lower number
    bad = _write(tmp_path / "bad.jsonl", [{"question_id": 1, "answer": "two"}], jsonl=True)
    assert main(["eval", "score", "--task", "vqav2", "--pred", bad, "--ref", ref]) == 2
    assert "1 reference ids have no prediction: '2'" in capsys.readouterr().err


def test_cli_other_tasks(tmp_path, capsys):
    coco = {"annotations": [{"image_id": 1, "caption": "a small red cube sits on sand"},
                            {"image_id": 2, "caption": "two green balls roll down a hill"}]}
    cap_ref = _write(tmp_path / "caps.json", coco)
    cap_pred = _write(tmp_path / "cap_pred.json", [{"image_id": 1, "caption": "a small red cube sits on sand"},
                                                   {"image_id": 2, "caption": "two green balls roll down a hill"}])
    assert main(["eval", "score", "--task", "flickr30k", "--pred", cap_pred, "--ref", cap_ref,
                 "--tokenizer", "fallback"]) == 0
    assert json.loads(capsys.readouterr().out)["CIDEr"] == pytest.approx(1000.0)

    pope_ref = _write(tmp_path / "pope.jsonl", [{"question_id": 1, "label": "yes", "split": "random"},
                                                {"question_id": 2, "label": "no", "split": "random"}], jsonl=True)
    pope_pred = _write(tmp_path / "pope_pred.json", {"1": "Yes, there is.", "2": "There is no cat."})
    assert main(["eval", "score", "--task", "pope", "--pred", pope_pred, "--ref", pope_ref]) == 0
    assert json.loads(capsys.readouterr().out)["average"]["f1"] == 100.0

    mmb_ref = _write(tmp_path / "mmb.json", [{"index": 3, "A": "cat", "B": "dog", "answer": "B"},
                                             {"index": 1_000_003, "A": "dog", "B": "cat", "answer": "A"}])
    mmb_pred = _write(tmp_path / "mmb_pred.json", [{"index": 3, "prediction": "B"},
                                                   {"index": 1_000_003, "prediction": "dog"}])
    assert main(["eval", "score", "--task", "mmbench", "--pred", mmb_pred, "--ref", mmb_ref]) == 0
    assert json.loads(capsys.readouterr().out)["circular_accuracy"] == 100.0

    sub = tmp_path / "gqa_sub.json"
    gqa_pred = _write(tmp_path / "gqa_pred.json", {"201": "left"})
    assert main(["eval", "export", "--task", "gqa", "--pred", gqa_pred, "--out", str(sub)]) == 0
    assert json.loads(sub.read_text()) == [{"questionId": "201", "prediction": "left"}]
    assert main(["eval", "export", "--task", "mmvet", "--pred", gqa_pred, "--out", str(tmp_path / "v.json")]) == 0
    assert "needs a GPT-4 judge" in capsys.readouterr().err
    assert main(["eval", "score", "--task", "mmvet", "--pred", gqa_pred, "--ref", gqa_pred]) == 2
    assert "mmvet is not scored here: MM-Vet needs a GPT-4 judge" in capsys.readouterr().err

    dup = _write(tmp_path / "dup.jsonl", [{"question_id": 1, "answer": "a"}, {"question_id": 1, "answer": "b"}],
                 jsonl=True)
    assert main(["eval", "score", "--task", "pope", "--pred", dup, "--ref", pope_ref]) == 2
    assert "duplicate ids (1): '1'" in capsys.readouterr().err
    assert main(["eval", "score", "--task", "pope", "--pred", str(tmp_path / "none.json"), "--ref", pope_ref]) == 2
    assert "file not found" in capsys.readouterr().err


def test_cli_vision_tasks(tmp_path, capsys):
    np = pytest.importorskip("numpy")
    from PIL import Image

    boxes_ref = _write(tmp_path / "rc.json", [{"id": "a", "box": [0, 0, 10, 10], "split": "testA"},
                                              {"id": "b", "box": [0, 0, 10, 10], "split": "testB"}])
    boxes_pred = _write(tmp_path / "rc_pred.json", [{"id": "a", "box": [1, 1, 10, 10]},   # IoU 81/119: hit
                                                    {"id": "b", "box": [5, 0, 10, 10]}])  # IoU 1/3: miss
    assert main(["eval", "score", "--task", "refcoco", "--pred", boxes_pred, "--ref", boxes_ref]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["acc@0.5"] == pytest.approx(50.0)
    assert out["acc@0.5/testA"] == 100.0 and out["acc@0.5/testB"] == 0.0

    seg_ref = _write(tmp_path / "rs.json", [{"id": "x", "mask": [[1, 1], [0, 0]]},
                                            {"id": "y", "mask": [[0, 0], [0, 0]]}])
    seg_pred = _write(tmp_path / "rs_pred.json", [{"id": "x", "mask": [[1, 0], [0, 0]]},
                                                  {"id": "y", "mask": [[0, 0], [0, 0]]}])
    assert main(["eval", "score", "--task", "reasonseg", "--pred", seg_pred, "--ref", seg_ref]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["giou"] == pytest.approx(75.0) and out["ciou"] == pytest.approx(50.0)  # x: 1/2; y: empty-empty 1

    rng = np.random.default_rng(0)
    for folder in ("gen", "ref"):
        (tmp_path / folder).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / folder / f"{i}.png")
    ref_dir = str(tmp_path / "ref")
    assert main(["eval", "score", "--task", "t2i", "--pred", ref_dir, "--ref", ref_dir]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fid"] == pytest.approx(0.0, abs=1e-3) and out["clip_i"] == pytest.approx(100.0)
    assert out["fid_standard"] is False
    assert main(["eval", "score", "--task", "editing", "--pred", str(tmp_path / "gen"), "--ref",
                 str(tmp_path / "ref"), "--benchmark", "magicbrush"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reference"] == "target" and out["l1"] > 0 and out["standard"] is False
    assert main(["eval", "score", "--task", "t2i", "--pred", str(tmp_path / "nope"), "--ref",
                 str(tmp_path / "ref")]) == 2
    assert "image folder not found" in capsys.readouterr().err
