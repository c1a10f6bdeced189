"""The chapter's worked examples say what its prose claims about them (so the prose cannot go stale silently)."""

import numpy as np
import pytest

from setok.eval import worked
from setok.eval.image import editing_l1
from setok.eval.mmbench import score_mmbench
from setok.eval.pope import parse_pope_answer
from setok.eval.referring import reasonseg_iou, rec_accuracy


def test_text_examples():
    preds, refs = worked.mmbench_example()
    out = score_mmbench(preds, refs)
    assert out["circular_accuracy"] == 50.0 and out["vanilla_accuracy"] == 87.5 and out["n_unmatched"] == 0
    assert parse_pope_answer("Nope.") == "yes" and parse_pope_answer("I do not think so.") == "no"
    table = worked.soft_accuracy_table()
    assert np.allclose(table["leave-one-out mean"], table["closed form"])
    rules = worked.reference_rule_table()
    assert (rules["VQA v2 / OK-VQA rule"] <= rules["TextVQA / VizWiz rule"]).all()
    assert worked.option_matching_table().set_index("answer").loc["A dog is blue.", "picked"] == "C"


def test_captioning_subset_differs():
    table = worked.captioning_table("fallback")
    assert table["CIDEr"].iloc[0] != pytest.approx(table["CIDEr"].iloc[2])


def test_vision_examples():
    preds, refs = worked.referring_example()
    assert rec_accuracy(preds, refs)["acc@0.5"] == 50.0
    preds, refs = worked.reasonseg_example()
    out = reasonseg_iou(preds, refs)
    assert out["ciou"] > out["giou"]
    preds, targets, inputs = worked.editing_example()
    assert editing_l1({"e2": preds["e2"]}, {"e2": inputs["e2"]})["l1"] == pytest.approx(0.0, abs=1e-6)
    assert editing_l1({"e2": preds["e2"]}, {"e2": targets["e2"]})["l1"] > 1.0
    clusters = worked.cluster_table()
    exact, merged = clusters.loc["objects exact, background split"], clusters.loc["objects merged"]
    assert merged["ARI"] > exact["ARI"]
    assert (exact[["FG-ARI", "mBO", "mIoU"]] == 1.0).all() and (merged[["FG-ARI", "mBO", "mIoU"]] < 1.0).all()


def test_fid_grows_with_shift():
    table = worked.fid_shift_table()
    assert table["FID (same images)"].iloc[0] == pytest.approx(0.0, abs=1e-4)
    assert np.all(np.diff(table["FID (same images)"]) > 0) and np.all(np.diff(table["CLIP-I"]) < 0)
    assert not table["standard"].any()


def test_flops_slope_is_about_two_flops_per_parameter():
    table, slopes = worked.flops_comparison()
    assert (table["our LLM prefill share"] > 0.5).all()  # "the prefill is the largest part at every count"
    assert slopes["paper_gflops_per_token"] < slopes["our_gflops_per_token"]
    # Vicuna-7B has 6.7e9 parameters: ~13.5 GFLOPs per extra token in the prefill (plus projector and attention)
    assert 12.0 < slopes["our_gflops_per_token"] < 15.0


def test_blind_baselines_on_miniworld_files():
    table = worked.blind_baselines(n=4)["value"]
    assert table[("vqav2", "the majority human answer", "accuracy")] == pytest.approx(100.0)
    assert table[("pope", '"Yes." to everything', "recall")] == 100.0  # "with a perfect recall"
    assert table[("pope", '"Yes." to everything', "yes_ratio")] == 100.0
    assert table[("pope", '"No." to everything', "yes_ratio")] == 0.0
