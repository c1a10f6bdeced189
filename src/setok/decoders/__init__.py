"""Stage I decoders (SPEC §2, §3.1): the visual decoder (Q-Former + U-Net), the mask decoder, and the Resampler."""

from setok.decoders.mask import MaskDecoder, dice_loss, hungarian_match, mask_consistency_kl, sigmoid_bce_loss
from setok.decoders.resampler import Resampler, ResamplerOutput
from setok.decoders.visual import LatentCodec, VisualDecoder, sd15_unet_config

__all__ = [
    "LatentCodec", "MaskDecoder", "Resampler", "ResamplerOutput", "VisualDecoder", "dice_loss", "hungarian_match",
    "mask_consistency_kl", "sd15_unet_config", "sigmoid_bce_loss",
]
