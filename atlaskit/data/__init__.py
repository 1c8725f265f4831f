"""Data layer: the registry of public files, catalogs built from them, sequences, images."""
