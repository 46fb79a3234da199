"""Evaluation: metric computations on features and images, and their reporting."""

from ganpipe.evaluate import _fidelity  # noqa: F401  (torch-fidelity's InceptionV3 importable without torchvision)
