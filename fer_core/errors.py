"""Errors a user can cause. Each message says what went wrong and what to do."""


class FerError(Exception):
    """Base class of every error caused by user input (files, datasets, models, settings)."""


class ImageError(FerError):
    """The image cannot be read: not an image, truncated, empty or too large."""


class DatasetError(FerError):
    """The FER2013 dataset is missing or malformed."""


class ModelError(FerError):
    """The model file is missing, corrupt, foreign or of the wrong shape."""


class ConfigError(FerError):
    """A setting (training config, run name, detector parameter) is invalid."""
