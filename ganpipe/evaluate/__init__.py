"""Evaluation: metric computations on features and images, and their reporting."""
