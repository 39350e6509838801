"""Data package: the default mapping documents and the taxonomy (YAML), shipped as package data."""
