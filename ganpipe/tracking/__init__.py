"""The only package that imports mlflow: runs, metric sinks, the model flavour, the registry."""
