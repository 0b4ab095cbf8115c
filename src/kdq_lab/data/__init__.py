"""Data: the raw-dataset contract, the built-in KDQ catalog, importers, matrices, splits and storage."""
