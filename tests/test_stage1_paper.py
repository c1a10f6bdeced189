"""Paper-scale Stage I on the meta device (SPEC §4): parameter counts and trainable/frozen split per module, checked
against counts computed by hand from the published architectures; plus the GPU check script's CPU dry run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from setok.config import build, load_profile
from setok.train.stage1 import Stage1Config, build_stage1_model, parameter_table


def linear(i, o, bias=True):
    return i * o + (o if bias else 0)


def sd15_cross_attention_kv() -> int:
    """SD-1.5: one transformer block per attention layer; 2 per down block (320, 640, 1280), 1 in the middle
    (1280), 3 per up block (1280, 640, 320); to_k and to_v map the 768-wide context to the block width."""
    widths = [320] * 2 + [640] * 2 + [1280] * 2 + [1280] + [1280] * 3 + [640] * 3 + [320] * 3
    return sum(2 * linear(768, w, bias=False) for w in widths)


def qformer_params(layers=4, d=768, ffn=3072, enc=1152) -> int:
    """BERT-base-width Q-Former layer: self-attention, cross-attention to the 1152-wide tokens, FFN, 3 LayerNorms."""
    self_attn = 4 * linear(d, d) + 2 * d
    cross = 2 * linear(d, d) + 2 * linear(enc, d) + 2 * d
    ffn_block = linear(d, ffn) + linear(ffn, d) + 2 * d
    return layers * (self_attn + cross + ffn_block) + 2 * d  # + the input LayerNorm


@pytest.fixture(scope="module")
def paper_model():
    pc = load_profile("paper")
    cfg = build(Stage1Config, pc["stage1"], "stage1")
    with torch.device("meta"):
        model = build_stage1_model(pc, cfg, load_weights=False)  # no checkpoint is read
    return model


def test_paper_stage1_builds_on_meta_with_expected_counts(paper_model):
    table = {r["module"]: r for r in parameter_table(paper_model, depth=2)}
    assert all(p.device.type == "meta" for p in paper_model.parameters())
    # SigLIP-so400m-patch14-384 vision tower: 428.2M, frozen (section 2.2)
    assert table["tokenizer.encoder"] == {"module": "tokenizer.encoder", "trainable": 0, "frozen": 428_225_600}
    # SD-1.5 U-Net: 859.52M in all, only the cross-attention keys/values train (section 2.2)
    unet = table["visual.unet"]
    assert unet["trainable"] + unet["frozen"] == 859_520_964
    assert unet["trainable"] == sd15_cross_attention_kv() == 19_169_280
    # Q-Former: 4 BERT-base layers, each with cross-attention (section 2.2, appendix D.1), all trainable
    assert table["visual.qformer"] == {"module": "visual.qformer", "trainable": qformer_params(), "frozen": 0}
    assert table["visual.query_tokens"]["trainable"] == 77 * 768
    # merger (2 blocks, 2 heads, d = 1152) and the clustering projection train
    assert table["tokenizer.merger"]["frozen"] == 0 and table["tokenizer.merger"]["trainable"] > 0
    assert table["tokenizer.cluster_proj"]["trainable"] == linear(1152, 1152)
    assert all(r["frozen"] == 0 for k, r in table.items() if k.startswith("mask_decoder"))


def test_paper_shapes(paper_model):
    assert paper_model.tokenizer.grid_size == (27, 27)
    assert paper_model.visual.query_tokens.shape == (1, 77, 768)
    assert paper_model.visual.unet.config.cross_attention_dim == 768
    assert paper_model.visual.unet.config.in_channels == 4 and paper_model.visual.config.space == "latent"
    assert paper_model.visual.qformer.config.cross_attention_frequency == 1
    assert paper_model.visual.qformer.config.encoder_hidden_size == 1152


def test_paper_profile_needs_local_checkpoints():
    pc = load_profile("paper")
    cfg = build(Stage1Config, pc["stage1"], "stage1")
    with torch.device("meta"), pytest.raises(FileNotFoundError, match="tokenizer.encoder_path"):
        build_stage1_model(pc, cfg)  # /models/siglip-so400m-patch14-384 is not here
    no_encoder = {**pc, "tokenizer": {**pc["tokenizer"], "encoder_path": None}}
    missing_bert = build(Stage1Config, {**pc["stage1"], "qformer_path": "/nonexistent/bert"}, "stage1")
    with torch.device("meta"), pytest.raises(FileNotFoundError, match="stage1.decoder.qformer_path"):
        build_stage1_model(no_encoder, missing_bert)


def test_gpu_script_dry_run(tmp_path):
    script = Path(__file__).parents[1] / "scripts" / "gpu_stage1.py"
    out = tmp_path / "stage1.json"
    proc = subprocess.run([sys.executable, str(script), "--dry-run", "--steps", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(out.read_text())
    assert record["profile"] == "smoke" and record["device"]["device"].startswith("cpu")
    assert record["phase1"]["step_s_median"] > 0 and record["phase2"]["batch"] == 2
