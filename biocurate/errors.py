"""Errors a person can act on: each says what was wrong, where, and what to do."""

import duckdb


class BiocurateError(Exception):
    """Base class; the CLI prints these without a traceback."""


class ConfigError(BiocurateError):
    pass


class StoreLockedError(BiocurateError):
    pass


class StoreMemoryError(BiocurateError, duckdb.OutOfMemoryException):
    """DuckDB ran out of memory at the store's own limit ([store] memory_limit): the step's
    transaction rolls back and the message says which setting to raise. Still a DuckDB
    out-of-memory error for code that handles those."""


class CatalogError(BiocurateError):
    pass


class SeedError(BiocurateError):
    pass


class ReviewError(BiocurateError):
    pass
