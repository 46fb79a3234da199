"""Architecture arithmetic that the networks and the config checks share (plain integers)."""

from __future__ import annotations

import math


def num_doublings(image_size: int, base: int = 4) -> int:
    """How many x2 up/down-samplings take `base` to `image_size` (which must be base * 2^k)."""
    k = int(round(math.log2(image_size / base))) if image_size >= base else -1
    if k < 1 or base * 2**k != image_size:
        raise ValueError(f"image size {image_size} is not {base} * 2^k with k >= 1")
    return k


def unet_depth(image_size: int) -> int:
    """Levels of a U-Net that halves `image_size` (a power of two >= 4) down to 1 x 1."""
    k = int(round(math.log2(image_size))) if image_size > 0 else 0
    if k < 2 or 2**k != image_size:
        raise ValueError(f"image size {image_size} is not a power of two >= 4")
    return k


def patch_output_size(image_size: int, n_layers: int) -> int:
    """Side of the PatchGAN's logit map: n_layers stride-2 convs, then two 4x4 stride-1 convs."""
    return image_size // 2**n_layers - 2


def attention_resolutions(image_size: int) -> list[int]:
    """Valid BigGAN `attn_res` values: the feature-map sizes between 8 and the image size."""
    return [4 * 2**j for j in range(1, num_doublings(image_size) + 1)]
