"""Thin Prefect flows over the ``biocurate`` stages."""
