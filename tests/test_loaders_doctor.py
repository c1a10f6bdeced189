"""`setok doctor`: mini needs nothing external; paper reports present / missing / incomplete paths (SPEC §4, §6)."""

import yaml
from _loader_fixtures import build_coco, build_pope

from setok.cli import main
from setok.config import load_profile
from setok.doctor import CHECKPOINTS, DATASETS, check_path, path_keys, run_doctor


def test_mini_needs_nothing_external(capsys):
    assert main(["doctor", "--profile", "mini"]) == 0
    assert "mini: nothing external is needed" in capsys.readouterr().out


def test_mini_reports_a_set_path_and_strict_fails(capsys):
    args = ["doctor", "--profile", "mini", "--config", "tokenizer.encoder_path=/models/x"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "external" in out and "tokenizer.encoder_path" in out and "/models/x" in out
    assert main([*args, "--strict"]) == 1


def hf_dir(path, weights=True):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    if weights:
        (path / "model.safetensors").write_bytes(b"\0" * 8)
    return path


def test_paper_table_with_tmp_config(tmp_path, capsys):
    cfg = load_profile("paper")
    ck, ds = cfg["paths"]["checkpoints"], cfg["paths"]["datasets"]
    ck["siglip"] = str(hf_dir(tmp_path / "siglip"))
    ck["vicuna"] = str(hf_dir(tmp_path / "vicuna"))  # no tokenizer -> incomplete
    ck["bert"] = str(hf_dir(tmp_path / "bert", weights=False))  # no weights -> incomplete
    (tmp_path / "inception.pth").write_bytes(b"w")
    ck["inception"] = str(tmp_path / "inception.pth")
    for split in ("train2017", "val2017"):
        build_coco(tmp_path / "coco", split=split)
    ds["coco"] = str(tmp_path / "coco")
    for variant in ("random", "popular", "adversarial"):
        build_pope(tmp_path / "pope", variant=variant)
    ds["pope"] = str(tmp_path / "pope")
    ds["gqa"] = str(tmp_path / "empty_gqa")
    (tmp_path / "empty_gqa").mkdir()
    del ds["evr"]  # a known key the config lacks is still reported
    ds["my_extra"] = str(tmp_path / "coco")  # an unknown key: existence only
    cfg_file = tmp_path / "paper.yaml"
    cfg.pop("profile")
    cfg_file.write_text(yaml.safe_dump(cfg))

    resolved = load_profile("paper", path=cfg_file)
    rows = {r.key: r for r in run_doctor(resolved)}
    assert "tokenizer.encoder_path" in path_keys(resolved)
    set_keys = [k for k, v in path_keys(resolved).items() if v is not None]  # null keys get no row
    assert len(rows) == len(CHECKPOINTS) + len(DATASETS) + 1 + len(set_keys)  # + my_extra
    status = {k: r.status for k, r in rows.items()}
    assert status["paths.checkpoints.siglip"] == "present"
    assert status["paths.checkpoints.inception"] == "present"
    assert status["paths.datasets.coco"] == "present"
    assert status["paths.datasets.pope"] == "present"
    assert status["paths.datasets.my_extra"] == "present"
    assert status["paths.checkpoints.vicuna"] == "incomplete"
    assert "tokenizer.model | tokenizer.json" in rows["paths.checkpoints.vicuna"].problem
    assert "model.safetensors" in rows["paths.checkpoints.bert"].problem
    assert status["paths.datasets.gqa"] == "incomplete"
    assert rows["paths.datasets.evr"].problem == "no path configured"
    assert status["paths.datasets.vqav2"] == "missing" and rows["paths.datasets.vqav2"].path == "/data/vqav2"
    assert sum(s == "present" for s in status.values()) == 5

    assert main(["doctor", "--profile", "paper", "--config-file", str(cfg_file)]) == 0
    out = capsys.readouterr().out
    assert "paper: 5/" in out and str(tmp_path / "coco") in out and "not found: testdev_balanced_questions.json" in out
    assert main(["doctor", "--profile", "paper", "--config-file", str(cfg_file), "--strict"]) == 1
    # a --config override on top of the file: break COCO by pointing it at an empty folder
    override = f"paths.datasets.coco={tmp_path / 'empty_gqa'}"
    main(["doctor", "--profile", "paper", "--config-file", str(cfg_file), "--config", override])
    assert "paper: 4/" in capsys.readouterr().out


def test_check_path_rules(tmp_path):
    (tmp_path / "images").mkdir()
    reqs = [["images/"]]
    assert check_path("k", tmp_path, "x", reqs).status == "incomplete"  # empty folder does not count
    (tmp_path / "images" / "a.jpg").write_bytes(b"")
    assert check_path("k", tmp_path, "x", reqs).status == "present"
    (tmp_path / "w.txt").write_text("")
    assert check_path("k", tmp_path / "w.txt", "x", [["."]]).problem.startswith("not a .pth")
    assert check_path("k", None, "x", reqs).status == "missing"


def test_bad_profile_exits_2(capsys):
    assert main(["doctor", "--profile", "huge"]) == 2
    assert "unknown profile 'huge'" in capsys.readouterr().err


def test_validate_reads_present_datasets_in_skip_mode(tmp_path, capsys):
    build_coco(tmp_path / "coco", ("box_out", "caption_empty"), split="val2017")
    for variant in ("random", "popular", "adversarial"):
        build_pope(tmp_path / "pope", ("maybe",) if variant == "random" else (), variant=variant)
    args = [
        "doctor",
        "--profile",
        "paper",
        "--config",
        f"paths.datasets.coco={tmp_path / 'coco'}",
        "--config",
        f"paths.datasets.pope={tmp_path / 'pope'}",
        "--config",
        f"paths.datasets.coco2014={tmp_path / 'pope'}",  # POPE images: <coco2014>/val2014
        "--validate",
        "coco,pope,gqa",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "coco_captions: loaded 3, skipped 1" in out and "empty_text: 1 (first ids: caption 16" in out
    assert "coco_instances: loaded 3, skipped 1" in out and "out_of_bounds: 1" in out
    assert out.count("pope: loaded 2, skipped 0") == 2 and "pope: loaded 2, skipped 1" in out
    assert "gqa: cannot validate: gqa file not found: /data/gqa/testdev_balanced_questions.json" in out
    assert main([*args[:-1], "coco,imagenet"]) == 2
    assert "no loader for ['imagenet']" in capsys.readouterr().err
