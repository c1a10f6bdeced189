"""The visual decoder of Stage I: a Q-Former maps the variable-length tokens U to a fixed set of conditioning vectors
for a diffusers U-Net trained by epsilon prediction (Eq. 3, arXiv 2406.05127v1; SPEC §2, §3.1).

Shape legend: B images, K max tokens, d token width, Q learnable queries, D Q-Former width (= U-Net cross-attention
width), C/H/W the diffused sample (pixels at mini, SD-1.5 VAE latents at paper scale).

Paper scale (appendix D.1): the Q-Former backbone is initialised from BERT-base (4 layers, each with cross-attention,
"four cross-attention layers", section 2.2) and the U-Net from SD-1.5; only the U-Net's cross-attention keys and values
are trained (section 2.2). Choices the paper leaves open, recorded as config values: Q = 77 queries (Table 7's Stage-I
"Maximum Token Length 77", i.e. SD-1.5's text-context length), Q-Former dropout 0, and the VAE posterior mean (not a
sample) as the clean latent.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from transformers import Blip2QFormerConfig, Blip2QFormerModel

SPACES = ("pixel", "latent")
UNET_TRAINABLE = ("all", "kv", "none")


def sd15_unet_config() -> dict:
    """The U-Net config of Stable Diffusion v1.5 (its ``unet/config.json``), written in code for meta-device builds."""
    return dict(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, cross_attention_dim=768,
        block_out_channels=(320, 640, 1280, 1280), attention_head_dim=8, norm_num_groups=32,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        flip_sin_to_cos=True, freq_shift=0, downsample_padding=1, mid_block_scale_factor=1, act_fn="silu",
        norm_eps=1e-5,
    )


def _require_dir(path: str | None, key: str) -> Path:
    """A local checkpoint folder, or a FileNotFoundError naming the path and the config key (never a download)."""
    if not path or not Path(path).exists():
        raise FileNotFoundError(f"checkpoint not found: {path!r} (set config key {key} to a local folder)")
    return Path(path)


def bert_to_qformer_state(bert_state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """Rename BERT-base weights to ``Blip2QFormerModel`` names (self-attention, FFN, embedding LayerNorm).

    The cross-attention blocks have no BERT counterpart and keep their fresh initialisation (as in BLIP-2).
    """
    out: dict[str, torch.Tensor] = {}
    for name, value in bert_state.items():
        name = name.removeprefix("bert.")
        if name.startswith("embeddings.LayerNorm."):
            out["layernorm." + name.split(".")[-1]] = value
            continue
        if not name.startswith("encoder.layer."):
            continue
        layer = int(name.split(".")[2])
        if layer >= num_layers:
            continue
        name = (name.replace(".attention.self.", ".attention.attention.")
                .replace(".intermediate.", ".intermediate_query.").replace(".output.dense.", ".output_query.dense.")
                .replace(".output.LayerNorm.", ".output_query.LayerNorm."))
        # the attention block's own output (attention.output_query.*) must keep its BERT name attention.output.*
        name = name.replace(".attention.output_query.", ".attention.output.")
        out[name] = value
    return out


class VisualDecoder(ModelMixin, ConfigMixin):
    """Q-Former (learnable queries, cross-attention to the tokens) + ``UNet2DConditionModel`` + DDPM noise schedule.

    ``diffusion_loss`` is Eq. 3; ``reconstruct`` samples with DDIM from pure noise conditioned on the tokens.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        token_dim: int = 1152,              # tokenizer width d (SigLIP-so400m)
        num_queries: int = 77,              # Table 7 Stage-I max token length 77 = SD-1.5 context length
        qformer_hidden_size: int = 768,     # BERT-base
        qformer_layers: int = 4,            # "four cross-attention layers" (section 2.2)
        qformer_heads: int = 12,
        qformer_intermediate_size: int = 3072,
        qformer_dropout: float = 0.0,
        space: str = "latent",              # "latent": SD-1.5 VAE latents; "pixel": images in [-1, 1] (mini)
        unet_config: dict | None = None,    # UNet2DConditionModel kwargs; None = SD-1.5 (sd15_unet_config)
        unet_trainable: str = "kv",         # "kv": only cross-attention to_k/to_v (section 2.2); "all"; "none"
        num_train_timesteps: int = 1000,
        beta_schedule: str = "scaled_linear",
        beta_start: float = 0.00085,
        beta_end: float = 0.012,
    ):
        super().__init__()
        if space not in SPACES:
            raise ValueError(f"space must be one of {SPACES} (got space={space!r})")
        if unet_trainable not in UNET_TRAINABLE:
            raise ValueError(f"unet_trainable must be one of {UNET_TRAINABLE} (got {unet_trainable!r})")
        if num_queries < 1:
            raise ValueError(f"num_queries must be >= 1 (got num_queries={num_queries})")
        unet_kwargs = dict(sd15_unet_config() if unet_config is None else unet_config)
        unet_kwargs["cross_attention_dim"] = qformer_hidden_size  # the U-Net attends to the Q-Former outputs
        qformer_config = Blip2QFormerConfig(
            hidden_size=qformer_hidden_size, num_hidden_layers=qformer_layers, num_attention_heads=qformer_heads,
            intermediate_size=qformer_intermediate_size, cross_attention_frequency=1,  # every layer cross-attends
            encoder_hidden_size=token_dim, hidden_dropout_prob=qformer_dropout,
            attention_probs_dropout_prob=qformer_dropout,
        )
        self.query_tokens = nn.Parameter(torch.randn(1, num_queries, qformer_hidden_size) * 0.02)  # (1, Q, D)
        self.qformer = Blip2QFormerModel(qformer_config)
        self.unet = UNet2DConditionModel(**unet_kwargs)
        self.noise_scheduler = DDPMScheduler(
            num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule, beta_start=beta_start,
            beta_end=beta_end, prediction_type="epsilon", clip_sample=False,
        )
        self.set_trainable(unet_trainable)

    # -- parameters ------------------------------------------------------------------------------------------------
    def set_trainable(self, unet_trainable: str) -> None:
        """Q-Former and queries train; the U-Net trains fully, only in cross-attention K/V (paper), or not at all."""
        if unet_trainable not in UNET_TRAINABLE:
            raise ValueError(f"unet_trainable must be one of {UNET_TRAINABLE} (got {unet_trainable!r})")
        for name, param in self.unet.named_parameters():
            is_kv = ".attn2.to_k." in name or ".attn2.to_v." in name  # attn2 = cross-attention in diffusers
            param.requires_grad_(unet_trainable == "all" or (unet_trainable == "kv" and is_kv))

    def load_pretrained_parts(self, qformer_path: str | None, unet_path: str | None) -> None:
        """Initialise the Q-Former from BERT-base and the U-Net from SD-1.5, both from local folders."""
        from transformers import BertModel

        if qformer_path is not None:
            bert = BertModel.from_pretrained(str(_require_dir(qformer_path, "stage1.decoder.qformer_path")))
            state = bert_to_qformer_state(bert.state_dict(), self.config.qformer_layers)
            missing, unexpected = self.qformer.load_state_dict(state, strict=False)
            if unexpected:
                raise ValueError(f"BERT checkpoint at {qformer_path} has unexpected Q-Former keys {unexpected[:5]}")
        if unet_path is not None:
            root = _require_dir(unet_path, "stage1.decoder.unet_path")
            sub = "unet" if (root / "unet").is_dir() else None
            unet = UNet2DConditionModel.from_pretrained(str(root), subfolder=sub)
            self.unet.load_state_dict(unet.state_dict())
        self.set_trainable(self.config.unet_trainable)

    # -- forward ---------------------------------------------------------------------------------------------------
    def condition(self, tokens: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """Q-Former: learnable queries cross-attend the valid tokens -> (B, Q, D) U-Net context."""
        if tokens.ndim != 3 or tokens.shape[-1] != self.config.token_dim:
            raise ValueError(f"tokens must be (B, K, {self.config.token_dim}) (got {tuple(tokens.shape)})")
        batch = tokens.shape[0]
        queries = self.query_tokens.expand(batch, -1, -1)  # (B, Q, D)
        out = self.qformer(query_embeds=queries, encoder_hidden_states=tokens,
                           encoder_attention_mask=token_mask.long())
        return out.last_hidden_state  # (B, Q, D)

    def diffusion_loss(self, x0: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor,
                       noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """Eq. 3, arXiv 2406.05127v1; SPEC §3.1: per-image ||eps - eps_theta(z_t, t, U)||^2 (mean over C, H, W).

        ``noise`` (B, C, H, W) and ``timesteps`` (B,) come from the caller, so the loss is a pure function of its
        inputs (what makes 1- and 2-process runs and resumed runs match exactly).
        """
        context = self.condition(tokens, token_mask)  # (B, Q, D)
        z_t = self.noise_scheduler.add_noise(x0, noise, timesteps)  # (B, C, H, W), forward process q(z_t | z_0)
        eps = self.unet(z_t, timesteps, encoder_hidden_states=context.to(z_t.dtype)).sample  # (B, C, H, W)
        return (eps.float() - noise.float()).pow(2).mean(dim=(1, 2, 3))  # (B,)

    @torch.no_grad()
    def reconstruct(self, tokens: torch.Tensor, token_mask: torch.Tensor, shape: tuple[int, int, int],
                    num_inference_steps: int = 50, generator: torch.Generator | None = None) -> torch.Tensor:
        """DDIM sampling conditioned on the tokens; returns samples (B, C, H, W) in the diffused space."""
        context = self.condition(tokens, token_mask)  # (B, Q, D)
        # pixel space: clip the x0 estimate to the image range (DDPM's default), which keeps early steps bounded
        ddim = DDIMScheduler.from_config(self.noise_scheduler.config, clip_sample=self.config.space == "pixel",
                                         set_alpha_to_one=False)
        ddim.set_timesteps(num_inference_steps)
        sample = torch.randn((tokens.shape[0], *shape), generator=generator).to(tokens.device, context.dtype)
        for t in ddim.timesteps:
            eps = self.unet(sample, t, encoder_hidden_states=context).sample
            sample = ddim.step(eps, t, sample).prev_sample
        return sample


class LatentCodec(nn.Module):
    """The frozen SD-1.5 ``AutoencoderKL`` (paper scale): images in [-1, 1] <-> scaled latents. Not saved with the
    decoder; loaded from its local folder each time."""

    def __init__(self, vae: AutoencoderKL):
        super().__init__()
        self.vae = vae.requires_grad_(False).eval()

    @classmethod
    def from_path(cls, path: str | None) -> LatentCodec:
        root = _require_dir(path, "stage1.decoder.vae_path")
        sub = "vae" if (root / "vae").is_dir() else None
        return cls(AutoencoderKL.from_pretrained(str(root), subfolder=sub))

    @torch.no_grad()
    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, 4, H/8, W/8); the posterior mean times the SD scaling factor."""
        return self.vae.encode(pixel_values).latent_dist.mean * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents / self.vae.config.scaling_factor).sample.clamp(-1, 1)
