"""The Ray Train loop (generic over recipes), checkpoints, health checks and the driver."""
