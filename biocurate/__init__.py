"""biocurate: build and keep rebuilding a human-verified biomedical tool-calling dataset."""

__version__ = "0.1.0"
