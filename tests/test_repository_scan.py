"""Every experiment in ``repository/`` survives the master's examination.

ARTIQ's master lists a repository by building each experiment with every argument None and
dummy devices (``TraceArgumentManager``); an experiment whose ``build()`` computes with an
argument value fails there and the dashboard does not show it. ``examine_repository`` does
the same here (``ionlink scan repository/``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ionlink.runner.devices import load_device_db
from ionlink.runner.examine import examine_file, examine_repository

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = ROOT / "repository"

#: Files (relative to the project root) whose examination is known to fail, with why. Each
#: is an expected failure (strict: the test fails once the file examines, so that it is
#: taken off this list). Must be empty once every experiment is fixed.
KNOWN_FAILURES: dict[str, str] = {}


def _experiment_files() -> list[Path]:
    """The ``*.py`` files examine_repository visits (dot names and caches skipped)."""
    return sorted(p for p in REPOSITORY.rglob("*.py")
                  if not any(part.startswith(".") or part == "__pycache__"
                             for part in p.relative_to(REPOSITORY).parts))


def _relative(path: Path | str) -> str:
    return Path(path).resolve().relative_to(ROOT).as_posix()


def _params():
    for path in _experiment_files():
        rel = _relative(path)
        marks = ()
        if rel in KNOWN_FAILURES:
            marks = pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[rel])
        yield pytest.param(path, id=rel, marks=marks)


@pytest.fixture(scope="module")
def device_db() -> dict:
    return load_device_db(ROOT / "device_db.py")


def test_known_failures_are_repository_files():
    files = {_relative(p) for p in _experiment_files()}
    assert set(KNOWN_FAILURES) <= files, set(KNOWN_FAILURES) - files


@pytest.mark.parametrize("path", list(_params()))
def test_file_examines_with_arguments_none(path, device_db):
    """Each file builds (every argument None) and declares at least one experiment with
    its arguments."""
    descriptions = examine_file(path, device_db)
    assert descriptions, f"{path}: no experiment found"
    for d in descriptions:
        assert d.arginfo or d.devices, f"{d.class_name}: neither arguments nor devices"


def test_examine_repository_fails_only_on_known_files(device_db):
    """The whole repository at once, as the master scans it: no failure outside
    KNOWN_FAILURES (each failure is a one-line reason)."""
    descriptions, failures = examine_repository(REPOSITORY, device_db)
    unexpected = {_relative(p): reason for p, reason in failures.items()
                  if _relative(p) not in KNOWN_FAILURES}
    assert not unexpected, unexpected
    assert all("\n" not in reason for reason in failures.values())
    examined = {_relative(d.file) for d in descriptions}
    expected = {_relative(p) for p in _experiment_files()} - {
        _relative(p) for p in failures}
    assert examined == expected
