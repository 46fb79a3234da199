"""Ray Tune sweeps over losses, architectures and optimiser settings (Tune over Train)."""
