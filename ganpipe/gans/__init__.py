"""GAN recipes, one module per family; importing this package registers them all."""

from ganpipe.gans.base import FAMILIES, SAMPLERS, DataInfo, Recipe, Sampler, sampler_from_export

# Each family module registers its recipe and sampler on import.
from ganpipe.gans import biggan, cgan, cyclegan, dcgan, pix2pix, toy  # noqa: E402,F401

__all__ = ["FAMILIES", "SAMPLERS", "DataInfo", "Recipe", "Sampler", "sampler_from_export"]
