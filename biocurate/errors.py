"""Errors a person can act on: each says what was wrong, where, and what to do."""


class BiocurateError(Exception):
    """Base class; the CLI prints these without a traceback."""


class ConfigError(BiocurateError):
    pass


class StoreLockedError(BiocurateError):
    pass


class CatalogError(BiocurateError):
    pass


class SeedError(BiocurateError):
    pass


class ReviewError(BiocurateError):
    pass
