"""Data sources (built-in sets, folder importers), preparation to Parquet, and loading."""
