"""SeTok, the semantic-equivalent vision tokenizer (paper §2.1; SPEC §1).

    image -> vision encoder -> patch features X (B, N, d)
          -> z = normalize(proj(X))                                   SPEC §1.1 clustering space
          -> rho, delta, score (Eq. 1-2) -> stick breaking (Alg. 1)   masks (B, K, N)
          -> tokens in raster order of their seeds, remainder last   SPEC §1.2
          -> cluster merger                                           tokens U (B, K, d) + token_mask (B, K)

The encoder is an HF vision tower: SigLIP (``SiglipVisionModel``, no CLS token) or CLIP (``CLIPVisionModel``, CLS
dropped) loaded from a local path at paper scale, or a small SigLIP-architecture ViT built from config (random
weights) for smoke/mini. ``SeTok`` is a ``PreTrainedModel``: ``save_pretrained``/``from_pretrained`` with safetensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from setok.baselines import ClusteringConfig, cluster
from setok.clustering import DensityPeaks, hard_assignment, one_hot_masks
from setok.config import build, load_profile, to_dict
from setok.merger import ClusterMerger, sincos_2d

ENCODER_TYPES = ("siglip", "clip", "convnext")  # convnext: the CNN of the Fig. 7 comparison (setok.encoders)
POSITION_INITS = ("random", "sincos")  # how a ViT built from config starts its position table

# SigLIP-so400m-patch14-384, the paper's tower (SPEC §1): known here so the paper-scale model builds on the meta
# device without its checkpoint.
SIGLIP_SO400M = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                     image_size=384, patch_size=14)


@dataclass
class MergerConfig:
    """Cluster merger settings (SPEC §1.3)."""

    num_heads: int = 2  # SPEC §1.3
    num_layers: int = 2  # SPEC §1.3
    ffn_dim: int | None = None  # default 4 * hidden_size
    use_pe: bool = True  # Table 8 ablates it
    mean_only: bool = False  # Table 8's "w/o merger"


class SeTokConfig(PreTrainedConfig):
    """SeTok settings: encoder, clustering (``ClusteringConfig`` fields) and merger (``MergerConfig`` fields)."""

    model_type = "setok"

    encoder_type: str = "siglip"  # siglip | clip
    encoder_path: str | None = None  # local HF checkpoint of the vision tower (paper profile)
    encoder_config: dict | None = None  # resolved HF vision config (filled from encoder_path or the fields below)
    freeze_encoder: bool = False  # frozen at paper scale; trained from scratch at mini (no weights offline)
    image_size: int = 384
    patch_size: int = 14
    hidden_size: int = 1152
    encoder_layers: int = 27
    encoder_heads: int = 16
    encoder_mlp: int | None = None  # default 4 * hidden_size
    encoder_position_init: str = "random"  # ViT built from config: "random" (HF default) or "sincos" (2D table)
    clustering: dict | None = None
    merger: dict | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        if self.encoder_type not in ENCODER_TYPES:
            raise ValueError(f"encoder_type must be one of {ENCODER_TYPES} (got {self.encoder_type!r})")
        if self.encoder_position_init not in POSITION_INITS:
            raise ValueError(f"encoder_position_init must be one of {POSITION_INITS} "
                             f"(got {self.encoder_position_init!r})")
        if not 1 <= self.patch_size <= self.image_size:
            raise ValueError(f"patch_size must be in [1, image_size] (got image_size={self.image_size}, "
                             f"patch_size={self.patch_size})")
        # validate the nested sections now (unknown keys and ranges), store them as plain dicts
        self.clustering = to_dict(build(ClusteringConfig, self.clustering, "tokenizer.clustering"))
        self.merger = to_dict(build(MergerConfig, self.merger, "tokenizer.merger"))
        super().__post_init__(**kwargs)

    @property
    def grid_size(self) -> tuple[int, int]:
        g = self.image_size // self.patch_size  # a stride-p convolution without padding: 384 // 14 = 27
        return (g, g)

    @property
    def clustering_config(self) -> ClusteringConfig:
        return build(ClusteringConfig, self.clustering)

    @property
    def merger_config(self) -> MergerConfig:
        return build(MergerConfig, self.merger)


@dataclass
class SeTokOutput(ModelOutput):
    """What :class:`SeTok` returns (all tensors batched; ``K`` = the batch's largest token count).

    tokens (B, K, d): the semantic tokens U, in raster order of their seeds, the remainder cluster last.
    token_mask (B, K) bool: True for real tokens.
    masks (B, K, N): soft masks in token order, differentiable in the projection and ``kappa`` (Eq. 4 trains them).
    labels (B, N) long: hard token index per patch (-1 for padding).
    num_tokens (B,): tokens per image.
    seeds (B, K) long: seed patch of each token (-1 for the remainder cluster and padding).
    features (B, N, d): encoder patch features; z (B, N, d): clustering space.
    peaks: DensityPeaks (rho, delta, score) when the method computes them.
    """

    tokens: Tensor | None = None
    token_mask: Tensor | None = None
    masks: Tensor | None = None
    labels: Tensor | None = None
    num_tokens: Tensor | None = None
    seeds: Tensor | None = None
    features: Tensor | None = None
    z: Tensor | None = None
    peaks: DensityPeaks | None = None
    grid_size: tuple[int, int] | None = None


def _vision_config(config: SeTokConfig):
    """The HF vision config the encoder is built from."""
    from transformers import CLIPVisionConfig, SiglipVisionConfig

    cls = SiglipVisionConfig if config.encoder_type == "siglip" else CLIPVisionConfig
    if config.encoder_config:
        values = {k: v for k, v in config.encoder_config.items() if k in {f.name for f in fields(cls)}}
        return cls(**values)
    return cls(hidden_size=config.hidden_size, intermediate_size=config.encoder_mlp or 4 * config.hidden_size,
               num_hidden_layers=config.encoder_layers, num_attention_heads=config.encoder_heads,
               image_size=config.image_size, patch_size=config.patch_size)


def order_tokens(masks: Tensor, seeds: Tensor, hard: bool) -> tuple[Tensor, Tensor, Tensor]:
    """SPEC §1.2 token order: raster order of each cluster's seed, the remainder cluster last, empty ones dropped.

    Args:
        masks (Tensor, (B, K, N)), seeds (Tensor, (B, K)): clustering output in creation order.
        hard: a cluster is kept if it wins at least one patch (hard) or has positive mass (soft).
    Returns:
        order (B, K') indices into K, kept (B, K') bool, and K' the batch's largest kept count is ``order.shape[1]``.
    """
    B, K, N = masks.shape
    if hard:
        labels = hard_assignment(masks)  # (B, N)
        size = one_hot_masks(labels, K).sum(-1)  # (B, K)
    else:
        size = masks.detach().sum(-1)
    keep = size > 0  # (B, K)
    key = torch.where(seeds >= 0, seeds, N).to(torch.float64)  # the remainder (seed -1) sorts after all seeds
    key = key + torch.arange(K, device=masks.device) / (K + 1.0)  # stable among equal keys
    key = torch.where(keep, key, 2.0 * N + 1.0)  # dropped clusters last
    order = key.argsort(-1)  # (B, K)
    K_kept = int(keep.sum(1).max()) if masks.device.type != "meta" else K
    order = order[:, :K_kept]
    return order, keep.gather(1, order)


class SeTokPreTrainedModel(PreTrainedModel):
    config_class = SeTokConfig
    base_model_prefix = "setok"
    main_input_name = "pixel_values"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, SeTok):
            with torch.no_grad():  # SPEC §1.1: identity-initialised projection
                module.cluster_proj.weight.copy_(torch.eye(module.cluster_proj.weight.shape[0]))
                module.cluster_proj.bias.zero_()
                module.log_kappa.fill_(math.log(module.config.clustering_config.kernel_scale))
            if module.config.encoder_position_init == "sincos":
                init_sincos_positions(module.encoder, module.config.grid_size)


def init_sincos_positions(encoder: nn.Module, grid_size: tuple[int, int]) -> None:
    """Overwrite a ViT's learned position table with the fixed 2D sin-cos embedding (rows in raster order).

    Used for the from-scratch mini encoder: a random table carries no notion of "near", which the clustering needs to
    tell apart two same-coloured objects; a loaded checkpoint replaces the table anyway. A CNN (no table) is left as
    it is. CLIP's extra first row (the CLS position) is set to zero.
    """
    table = next((m for name, m in encoder.named_modules() if name.endswith("position_embedding")
                  and isinstance(m, nn.Embedding)), None)
    if table is None:
        return
    n = grid_size[0] * grid_size[1]
    extra = table.num_embeddings - n
    if extra not in (0, 1) or table.embedding_dim % 4:
        raise ValueError(f"cannot lay a sin-cos table of {grid_size} on a position embedding of "
                         f"{tuple(table.weight.shape)}")
    with torch.no_grad():
        table.weight[extra:] = sincos_2d(grid_size, table.embedding_dim, device=table.weight.device,
                                         dtype=table.weight.dtype)
        table.weight[:extra] = 0.0


class SeTok(SeTokPreTrainedModel):
    """SeTok: encoder -> clustering projection + L2 norm -> density peaks -> stick breaking -> merger."""

    def __init__(self, config: SeTokConfig):
        super().__init__(config)
        from transformers import CLIPVisionModel, SiglipVisionModel

        if config.encoder_type == "convnext":
            from setok.encoders import build_convnext_encoder

            self.encoder = build_convnext_encoder(config.image_size, config.patch_size, config.hidden_size)
        else:
            vcfg = _vision_config(config)
            if vcfg.hidden_size != config.hidden_size:
                raise ValueError(f"encoder hidden size {vcfg.hidden_size} != tokenizer hidden_size "
                                 f"{config.hidden_size}")
            self.encoder = (SiglipVisionModel if config.encoder_type == "siglip" else CLIPVisionModel)(vcfg)
        d = config.hidden_size
        ccfg, mcfg = config.clustering_config, config.merger_config
        self.cluster_proj = nn.Linear(d, d)  # SPEC §1.1, identity-initialised
        self.cluster_proj.requires_grad_(ccfg.learn_projection)
        self.log_kappa = nn.Parameter(torch.tensor(math.log(ccfg.kernel_scale)),
                                      requires_grad=ccfg.learn_kernel_scale)  # kappa = exp(log_kappa) > 0
        self.merger = ClusterMerger(d, mcfg.num_heads, mcfg.num_layers, mcfg.ffn_dim, mcfg.use_pe, mcfg.mean_only)
        if config.freeze_encoder:
            self.encoder.requires_grad_(False)
        self.post_init()

    # ------------------------------------------------------------------------------------------ construction
    @classmethod
    def from_profile(cls, profile: str, overrides: list[str] | None = None, load_encoder: bool = True) -> SeTok:
        """Build the tokenizer of a profile (``configs/<profile>.yaml``, section ``tokenizer``).

        With ``encoder_path`` set and ``load_encoder`` True, the encoder's weights are read from that local folder;
        a missing folder is a FileNotFoundError naming it. With ``load_encoder`` False (e.g. on the meta device) a
        known SigLIP-so400m config stands in, so paper-scale shapes build without the checkpoint.
        """
        section = dict(load_profile(profile, overrides).get("tokenizer") or {})
        return cls.from_section(section, load_encoder=load_encoder)

    @classmethod
    def from_section(cls, section: dict[str, Any], load_encoder: bool = True) -> SeTok:
        known = set(SeTokConfig.__annotations__)
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in the tokenizer config; valid keys: {sorted(known)}")
        path = section.get("encoder_path")
        if path and load_encoder:
            folder = Path(path)
            if not (folder / "config.json").is_file():
                raise FileNotFoundError(f"vision encoder checkpoint not found at {folder} (config key "
                                        f"tokenizer.encoder_path); point it at a local HF model folder")
            from transformers import AutoConfig

            if section.get("encoder_type", "siglip") != "convnext":
                vcfg = AutoConfig.from_pretrained(folder)
                vcfg = getattr(vcfg, "vision_config", vcfg)
                section["encoder_config"] = vcfg.to_dict()
        elif path and section.get("encoder_type", "siglip") == "siglip" and not section.get("encoder_config"):
            section["encoder_config"] = dict(SIGLIP_SO400M)
        model = cls(SeTokConfig(**section))
        if path and load_encoder:
            model.load_encoder(path)
        return model

    def load_encoder(self, path: str | Path) -> None:
        """Load the vision tower's weights from a local HF folder (a full SigLIP/CLIP model or its vision part)."""
        from transformers import CLIPVisionModel, SiglipVisionModel

        if self.config.encoder_type == "convnext":
            from setok.encoders import ConvNextPatchEncoder as cls
        else:
            cls = SiglipVisionModel if self.config.encoder_type == "siglip" else CLIPVisionModel
        loaded = cls.from_pretrained(str(path))
        if self.config.encoder_type == "convnext":
            self.encoder = loaded  # the checkpoint defines the architecture (e.g. ConvNeXt-XXL)
        else:
            self.encoder.load_state_dict(loaded.state_dict())
        if self.config.freeze_encoder:
            self.encoder.requires_grad_(False)

    # ------------------------------------------------------------------------------------------------ parts
    @property
    def kappa(self) -> Tensor:
        """The kernel scale ``kappa`` (SPEC §1.2), positive by construction."""
        return self.log_kappa.exp()

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.config.grid_size

    def encode(self, pixel_values: Tensor) -> Tensor:
        """Patch features (B, N, d) of images (B, 3, H, W) normalised to [-1, 1]; CLIP's CLS token is dropped."""
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"pixel_values must have shape (B, 3, H, W) (got {tuple(pixel_values.shape)})")
        size = self.config.image_size
        if pixel_values.shape[-2:] != (size, size):
            raise ValueError(f"pixel_values must be {size}x{size} (got {tuple(pixel_values.shape[-2:])})")
        hidden = self.encoder(pixel_values=pixel_values).last_hidden_state  # (B, N(+1), d)
        return hidden[:, 1:] if self.config.encoder_type == "clip" else hidden

    def clustering_space(self, features: Tensor) -> Tensor:
        """SPEC §1.1: ``z = proj(x) / ||proj(x)||`` (B, N, d)."""
        return F.normalize(self.cluster_proj(features), dim=-1)

    # ---------------------------------------------------------------------------------------------- forward
    def forward(self, pixel_values: Tensor | None = None, features: Tensor | None = None,
                padding_mask: Tensor | None = None, generator: torch.Generator | None = None) -> SeTokOutput:
        """Tokenize images (``pixel_values``) or precomputed patch features (``features``, (B, N, d))."""
        if (pixel_values is None) == (features is None):
            raise ValueError("pass exactly one of pixel_values and features")
        if features is None:
            features = self.encode(pixel_values)  # (B, N, d)
        grid = self.grid_size
        if features.ndim != 3 or features.shape[1] != grid[0] * grid[1] or features.shape[2] != self.config.hidden_size:
            raise ValueError(f"features must have shape (B, {grid[0] * grid[1]}, {self.config.hidden_size}) "
                             f"(got {tuple(features.shape)})")
        ccfg = self.config.clustering_config
        hard = ccfg.mode == "hard"
        z = self.clustering_space(features)  # (B, N, d)
        clusters, peaks = cluster(z, ccfg, padding_mask, kernel_scale=self.kappa, generator=generator)
        order, token_mask = order_tokens(clusters.masks, clusters.seeds, hard)  # (B, K'), (B, K')
        B, K, N = clusters.masks.shape
        masks = clusters.masks.gather(1, order[..., None].expand(B, order.shape[1], N))  # (B, K', N) soft
        seeds = clusters.seeds.gather(1, order).masked_fill(~token_mask, -1)  # (B, K')
        masks = masks * token_mask[..., None]
        if hard:
            # hard labels decided in creation order (ties to the earlier mask), then renumbered in token order
            ranks = torch.arange(order.shape[1], device=order.device).expand_as(order).contiguous()
            rank = torch.full((B, K), -1, dtype=torch.long, device=order.device).scatter_(1, order, ranks)
            created = hard_assignment(clusters.masks)  # (B, N)
            labels = torch.where(created >= 0, rank.gather(1, created.clamp_min(0)), -1)  # (B, N)
            merge_masks = one_hot_masks(labels, order.shape[1]).to(features.dtype)  # (B, K', N)
        else:
            labels = hard_assignment(masks)
            merge_masks = masks
        tokens, nonempty = self.merger(features, merge_masks, grid, hard=hard)  # (B, K', d), (B, K')
        token_mask = token_mask & nonempty
        return SeTokOutput(tokens=tokens, token_mask=token_mask, masks=masks, labels=labels,
                           num_tokens=token_mask.sum(1), seeds=seeds, features=features, z=z, peaks=peaks,
                           grid_size=grid)
