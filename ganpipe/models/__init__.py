"""Networks only (nn.Module), one file per family; shared building blocks in layers.py."""
