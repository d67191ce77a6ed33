"""Exceptions raised by the analysis package."""


class AnalysisError(Exception):
    """Base class of every error raised by the analysis package."""


class MalformedFileError(AnalysisError):
    """A data file is missing, truncated, not HDF5, or lacks the expected layout.

    The message names the file and what is wrong with it.
    """


def open_hdf5_for_reading(path):
    """Open `path` (a pathlib.Path) read-only with h5py.

    Raises FileNotFoundError if it does not exist, MalformedFileError naming the file if it
    exists but is not a readable HDF5 file (truncated, foreign format).
    """
    import h5py  # local: keeps the exception module importable without h5py

    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise
    except OSError as error:
        raise MalformedFileError(
            f"{path}: not a readable HDF5 file (truncated or foreign): {error}"
        ) from error
