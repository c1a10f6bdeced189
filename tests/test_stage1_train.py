"""The Stage I trainer (SPEC §3.1): smoke run + artifact, exact resume, 2-process DDP == 1 process, batch checks."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from setok.config import build, load_profile
from setok.train.cli import main as train_main
from setok.train.stage1 import (
    Stage1Config,
    check_global_batch,
    load_stage1_artifact,
    train_stage1,
    train_stage1_seeds,
)
from setok.train.stage1_report import seed_table, spread_summary

FAST = ["stage1.phase1_steps=2", "stage1.phase2_steps=2", "stage1.eval_every=100", "stage1.eval_images=4",
        "stage1.data.n_train=16", "stage1.data.n_val=4"]


def run(tmp: Path, extra: list[str]) -> dict:
    cfg = load_profile("smoke", [*FAST, f"stage1.results_dir={tmp / 'results'}", *extra])
    return train_stage1(cfg, out_dir=tmp / "art")


def weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for part in ("tokenizer", "visual_decoder", "mask_decoder"):
        for f in sorted((folder / part).glob("*.safetensors")):
            out.update({f"{part}/{k}": v for k, v in load_file(f).items()})
    return out


def log_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted smoke run through the CLI (``setok train stage1``), checkpoints every step."""
    tmp = tmp_path_factory.mktemp("ref")
    code = train_main(["stage1", "--profile", "smoke", "--out", str(tmp / "art"), "--config", *FAST,
                       "stage1.save_every=1", f"stage1.results_dir={tmp / 'results'}"])
    assert code == 0
    return tmp / "art"


def test_cli_smoke_writes_artifact_and_results(reference):
    tmp_path = reference.parent
    manifest = json.loads((tmp_path / "art" / "manifest.json").read_text())
    assert manifest["stage"] == "stage1" and manifest["profile"] == "smoke" and manifest["steps"] == 4
    assert 0 <= manifest["metrics"]["val_fg_ari"] <= 1 or manifest["metrics"]["val_fg_ari"] != manifest[
        "metrics"]["val_fg_ari"]
    res = tmp_path / "results" / "smoke" / "stage1"
    assert {"log.csv", "eval.csv", "metrics.json", "run.json"} <= {p.name for p in res.iterdir()}
    rows = log_rows(tmp_path / "art")
    assert [r["phase"] for r in rows] == [1, 1, 2, 2] and "kl" in rows[-1] and "kl" not in rows[0]
    art = load_stage1_artifact(tmp_path / "art", expect={"profile": "smoke", "hidden_size": 32})
    out = art.tokenizer(pixel_values=torch.zeros(1, 3, 32, 32))
    assert out.tokens.shape[-1] == 32
    with pytest.raises(ValueError, match="hidden_size: artifact has 32, expected 1152"):
        load_stage1_artifact(tmp_path / "art", expect={"hidden_size": 1152})
    with pytest.raises(FileNotFoundError, match="manifest.json missing"):
        load_stage1_artifact(tmp_path / "nothing")
    # a bad override is a clear error (exit code 2)
    assert train_main(["stage1", "--profile", "smoke", "--out", str(tmp_path / "x"), "--config",
                       "stage1.batch_size=0"]) == 2


def test_resume_after_interruptions_is_exact(reference, tmp_path):
    # killed after 1 step (checkpoint at 1), then after 2 more steps (checkpoints 2, 3), then run to the end
    assert run(tmp_path, ["stage1.save_every=1", "stage1.max_steps_this_run=1"])["status"] == "interrupted"
    assert run(tmp_path, ["stage1.save_every=1", "stage1.max_steps_this_run=2"])["step"] == 3
    shutil.rmtree(tmp_path / "art" / "checkpoints" / "step_0000003")  # as if killed before step 3 was saved
    final = run(tmp_path, ["stage1.save_every=1"])
    ref_w, got_w = weights(reference), weights(tmp_path / "art")
    assert ref_w.keys() == got_w.keys()
    for k in ref_w:
        assert torch.equal(ref_w[k], got_w[k]), k
    assert log_rows(tmp_path / "art") == log_rows(reference)
    ref_metrics = json.loads((reference / "manifest.json").read_text())["metrics"]
    final.pop("wall_time_s"), ref_metrics.pop("wall_time_s")
    assert final == ref_metrics


def test_resume_refuses_a_different_config(reference, tmp_path):
    shutil.copytree(reference / "checkpoints", tmp_path / "art" / "checkpoints")
    with pytest.raises(ValueError, match="different stage1 config"):
        run(tmp_path, ["stage1.save_every=1", "stage1.lr=[0.01, 0.01]"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_one_process(reference, tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           "-m", "setok.train.cli", "stage1", "--profile", "smoke", "--out", str(tmp_path / "art"), "--config",
           *FAST, "stage1.batch_size=2", "stage1.save_every=100", f"stage1.results_dir={tmp_path / 'results'}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "global batch 4 = 2 per device x 1 accumulation x 2 processes" in proc.stdout
    one, two = log_rows(reference), log_rows(tmp_path / "art")
    assert len(one) == len(two) == 4
    for a, b in zip(one, two, strict=True):
        for key in ("loss", "diffusion", "bce", "dice", "kl"):
            if key in a:
                assert b[key] == pytest.approx(a[key], abs=1e-5, rel=1e-5), (a["step"], key)


def test_global_batch_check_against_table7():
    paper = load_profile("paper")["stage1"]
    cfg = build(Stage1Config, paper, "stage1")
    assert check_global_batch(cfg, world_size=16) == 512  # Table 7: 32 per GPU x 16 GPUs
    with pytest.raises(ValueError, match="Table 7's 512"):
        check_global_batch(cfg, world_size=8)
    cfg8 = build(Stage1Config, {**paper, "grad_accum": 2}, "stage1")
    assert check_global_batch(cfg8, world_size=8) == 512
    lenient = build(Stage1Config, {**paper, "allow_batch_mismatch": True}, "stage1")
    assert check_global_batch(lenient, world_size=1) == 32


@pytest.mark.parametrize("key,value,match", [
    ("tokenizer_kind", "slots", "tokenizer_kind"), ("distributed", "horovod", "distributed"),
    ("lr", [1e-3], "two positive"), ("phase1_steps", -1, "phase1_steps"), ("warmup_ratio", 1.0, "warmup_ratio"),
    ("mixed_precision", "fp8", "mixed_precision"), ("max_steps_this_run", 0, "max_steps_this_run"),
    ("kappa_range", [4.0, 2.0], "kappa_range"), ("kappa_range", [0.0, 2.0], "kappa_range"),
    ("affinity_phases", [3], "affinity_phases"),
])
def test_bad_stage1_config(key, value, match):
    with pytest.raises(ValueError, match=match):
        Stage1Config(**{key: value})
    with pytest.raises(ValueError, match="unknown config key"):
        build(Stage1Config, {"batchsize": 3}, "stage1")


def test_resampler_is_a_drop_in_tokenizer():
    from setok.train.stage1 import build_stage1_model, sample_noise

    pc = load_profile("smoke", ["stage1.tokenizer_kind=resampler"])
    cfg = build(Stage1Config, pc["stage1"], "stage1")
    torch.manual_seed(0)
    model = build_stage1_model(pc, cfg)
    assert not any(p.requires_grad for p in model.tokenizer.merger.parameters())
    pixel = torch.rand(2, 3, 32, 32) * 2 - 1
    noise, steps = sample_noise(0, torch.arange(2), (3, 32, 32), 1000)
    gt = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    gt[:, 0, :16] = True
    losses = model(pixel, pixel, noise, steps, gt, torch.ones(2, 1, dtype=torch.bool), phase=2)
    assert set(losses) >= {"loss", "diffusion", "bce", "dice", "kl"} and torch.isfinite(losses["loss"])
    assert losses["num_tokens"].item() == cfg.resampler["num_queries"]
    losses["loss"].backward()
    assert model.resampler.queries.grad is not None


def test_affinity_loss_is_off_by_default_and_trains_encoder_when_weighted():
    from setok.train.stage1 import build_stage1_model, sample_noise

    pc = load_profile("smoke", ["stage1.train_encoder=true"])
    cfg = build(Stage1Config, pc["stage1"], "stage1")
    torch.manual_seed(0)
    model = build_stage1_model(pc, cfg)
    pixel = torch.rand(2, 3, 32, 32) * 2 - 1
    noise, steps = sample_noise(0, torch.arange(2), (3, 32, 32), 1000)
    gt = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    gt[:, 0, :16] = True
    args = (pixel, pixel, noise, steps, gt, torch.ones(2, 1, dtype=torch.bool))
    assert "affinity" not in model(*args, phase=2)
    assert "affinity" not in model(*args, phase=1, weights={"affinity": 1.0})  # default phases: [2]
    losses = model(*args, phase=2, weights={"affinity": 1.0, "diffusion": 0.0, "bce": 0.0, "dice": 0.0, "kl": 0.0},
                   encoder_losses="mask")
    assert torch.isfinite(losses["affinity"]) and losses["loss"].item() == pytest.approx(losses["affinity"].item())
    losses["loss"].backward()
    encoder_grads = [p.grad for p in model.tokenizer.encoder.parameters() if p.grad is not None]
    assert encoder_grads and any(g.abs().sum() > 0 for g in encoder_grads)
    assert model.tokenizer.log_kappa.grad is not None and model.tokenizer.log_kappa.grad != 0


@pytest.mark.parametrize("encoder_losses,mask_reaches_encoder", [("all", True), ("mask", True), ("affinity", False)])
def test_encoder_losses_choose_what_trains_the_encoder(encoder_losses, mask_reaches_encoder):
    from setok.train.stage1 import build_stage1_model, sample_noise

    pc = load_profile("smoke", ["stage1.train_encoder=true"])
    model = build_stage1_model(pc, build(Stage1Config, pc["stage1"], "stage1"))
    pixel = torch.rand(2, 3, 32, 32) * 2 - 1
    noise, steps = sample_noise(0, torch.arange(2), (3, 32, 32), 1000)
    gt = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    gt[:, 0, :, :12] = True
    args = (pixel, pixel, noise, steps, gt, torch.ones(2, 1, dtype=torch.bool))

    def encoder_grad(weights: dict) -> float:
        model.zero_grad(set_to_none=True)
        model(*args, phase=2, weights=weights, encoder_losses=encoder_losses)["loss"].backward()
        return sum(float(p.grad.abs().sum()) for p in model.tokenizer.encoder.parameters() if p.grad is not None)

    only_mask = {"diffusion": 0.0, "bce": 1.0, "dice": 1.0, "kl": 0.0}
    assert (encoder_grad(only_mask) > 0) == mask_reaches_encoder
    assert encoder_grad({**{k: 0.0 for k in only_mask}, "affinity": 1.0}) > 0  # the affinity loss always does
    assert (encoder_grad({"diffusion": 1.0, "bce": 0.0, "dice": 0.0, "kl": 0.0}) > 0) == (encoder_losses == "all")
    with pytest.raises(ValueError, match="encoder_losses"):
        build(Stage1Config, {"encoder_losses": "diffusion"}, "stage1")


def test_seed_spread_runs_differ_only_in_training_seed(reference, tmp_path):
    results = tmp_path / "results"
    rows = train_stage1_seeds("smoke", [1, 2], [*FAST, f"stage1.results_dir={results}"], artifacts_dir=tmp_path)
    assert [r["seed"] for r in rows] == [1, 2]
    runs = {s: json.loads((results / "smoke" / f"stage1_seed{s}" / "run.json").read_text()) for s in (1, 2)}
    assert runs[1]["seed"] == 1 and runs[2]["seed"] == 2
    manifests = {s: json.loads((tmp_path / f"stage1_seed{s}" / "manifest.json").read_text()) for s in (1, 2)}
    assert manifests[1]["config"]["seed"] == 1 and manifests[2]["config"]["run_name"] == "stage1_seed2"
    a, b = weights(tmp_path / "stage1_seed1"), weights(tmp_path / "stage1_seed2")
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)  # other initial weights
    # the main run of the reference fixture counts as seed 0; the table reads all three and the summary matches numpy
    shutil.copytree(reference.parent / "results" / "smoke" / "stage1", results / "smoke" / "stage1")
    table = seed_table("smoke", [0, 1, 2], main_seed=0, root=results)
    assert table["seed"].tolist() == [0, 1, 2]
    assert table.loc[1, "val_fg_ari"] == pytest.approx(rows[0]["val_fg_ari"], nan_ok=True)
    summary = spread_summary(table)
    values = table["val_num_tokens"].to_numpy()
    assert summary.loc["val_num_tokens", "mean"] == pytest.approx(values.mean())
    assert summary.loc["val_num_tokens", "std"] == pytest.approx(values.std(ddof=1))
    assert summary.loc["val_num_tokens", "max"] == values.max() and summary.loc["val_num_tokens", "seeds"] == 3
    with pytest.raises(FileNotFoundError, match="seed 7"):
        seed_table("smoke", [0, 7], root=results)
    # a stale run is never mixed in: a folder whose run.json names another seed, or another recipe, is refused
    record = results / "smoke" / "stage1_seed2" / "run.json"
    original = record.read_text()
    record.write_text(json.dumps({**json.loads(original), "seed": 5}))
    with pytest.raises(ValueError, match="seed 5, not 2"):
        seed_table("smoke", [0, 1, 2], root=results)
    stale = json.loads(original)
    stale["config"]["lr"] = [0.5, 0.5]
    record.write_text(json.dumps(stale))
    with pytest.raises(ValueError, match=r"another stage1 recipe .*differs in \['lr'\]"):
        seed_table("smoke", [0, 1, 2], root=results)
    record.write_text(original)
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError, match="plain folder name"):
            build(Stage1Config, {"run_name": bad}, "stage1")
    with pytest.raises(ValueError, match="without repeats"):
        train_stage1_seeds("smoke", [1, 1], FAST, artifacts_dir=tmp_path)
    assert train_main(["stage1", "--profile", "smoke", "--seeds", "3", "--out", str(tmp_path / "x")]) == 2


def test_reconstructions_and_their_error(reference):
    import numpy as np

    from setok.train.stage1_report import reconstruction_error, reconstructions, val_batch

    art = load_stage1_artifact(reference)
    originals, recs = reconstructions(art, val_batch("smoke", 3), n=3, steps=2)
    assert originals.shape == recs.shape == (3, 32, 32, 3) and 0 <= recs.min() and recs.max() <= 1
    # a hand-worked case: two 1x2 images, originals [[0, 1]] and [[1, 1]] (grey), reconstructions all 0.5
    o = np.array([[[[0.0] * 3, [1.0] * 3]], [[[1.0] * 3, [1.0] * 3]]])
    r = np.full_like(o, 0.5)
    err = reconstruction_error(o, r)
    assert err["mse"] == pytest.approx(0.25)  # every pixel is 0.5 away
    assert err["mse_mean_colour"] == pytest.approx(0.125)  # image 1: mean 0.5, errors 0.25 x 2; image 2: exact
    assert err["mse_other_image"] == pytest.approx(0.25) and err["images"] == 2
    with pytest.raises(ValueError, match="same"):
        reconstruction_error(o, r[:1])
    art.visual.register_to_config(space="latent")  # a paper-scale decoder cannot be shown without the VAE
    with pytest.raises(ValueError, match="SD-1.5 VAE"):
        reconstructions(art, val_batch("smoke", 2), n=2, steps=2)


def test_evaluate_compares_own_tokens_with_another_images_tokens(monkeypatch):
    from setok.train.stage1 import build_dataset, build_stage1_model, evaluate

    pc = load_profile("smoke", ["stage1.eval_images=4"])
    cfg = build(Stage1Config, pc["stage1"], "stage1")
    torch.manual_seed(0)
    model = build_stage1_model(pc, cfg)
    data = build_dataset({"kind": "miniworld", "n_val": 4}, "val", 32, 0)
    metrics, _ = evaluate(model, data, cfg, 0, torch.device("cpu"), batch_size=4)
    assert metrics["val_diffusion"] != metrics["val_diffusion_other_tokens"]  # a random U-Net reacts to its context
    # a decoder whose context ignores the tokens scores the same with anyone's tokens
    monkeypatch.setattr(model.visual, "condition", lambda tokens, mask: torch.zeros(len(tokens), 4, 32))
    blind, _ = evaluate(model, data, cfg, 0, torch.device("cpu"), batch_size=4)
    assert blind["val_diffusion"] == blind["val_diffusion_other_tokens"]
    single, _ = evaluate(model, data, cfg, 0, torch.device("cpu"), batch_size=1)  # nobody else's tokens to use
    assert single["val_diffusion_other_tokens"] != single["val_diffusion_other_tokens"]  # NaN
