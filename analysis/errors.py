"""Exceptions raised by the analysis package."""


class AnalysisError(Exception):
    """Base class of every error raised by the analysis package."""


class MalformedFileError(AnalysisError):
    """A data file is missing, truncated, not HDF5, or lacks the expected layout.

    The message names the file and what is wrong with it.
    """
