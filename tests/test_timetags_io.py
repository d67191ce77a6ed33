"""Photon-HDF5-compatible time-tag files: writer, reader, crash safety, streaming from disk."""

import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from analysis.errors import AnalysisError, MalformedFileError
from analysis.timetags import (
    COMPRESSIONS,
    TimeTagReader,
    TimeTagWriter,
    coincidences,
    correlation,
    count_rates,
    counts_between_markers,
    generate_tags,
    heralded_events,
)
from analysis.timetags.io import flushed_tag_count


@pytest.fixture(scope="module")
def tags():
    return generate_tags(
        [2e6, 2e6, 5e5, 1e5], 0.01, channels=(0, 1, 2, 5), seed=11, correlated_fraction=0.3,
        correlation_delay_s=1e-9, correlation_jitter_s=20e-12,
    )


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_round_trip_in_uneven_appends(tmp_path, tags, compression):
    ts, det = tags
    path = tmp_path / "tags.h5"
    cuts = [0, 1, 1000, 1000, 4096 * 3 + 7, 20_000, len(ts)]
    with TimeTagWriter(path, chunk_tags=4096, compression=compression, description="run 1") as w:
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            w.append(ts[a:b], det[a:b])
        assert w.n_tags == len(ts)
    with TimeTagReader(path) as reader:
        assert reader.n_tags == len(ts)
        assert reader.timestamps_unit == 1e-12
        assert reader.channels == [0, 1, 2, 5]
        assert reader.acquisition_duration == pytest.approx((ts[-1] - ts[0]) * 1e-12)
        read_ts, read_det = reader.read()
    np.testing.assert_array_equal(read_ts, ts)
    np.testing.assert_array_equal(read_det, det)


def test_photon_hdf5_layout(tmp_path, tags):
    ts, det = tags
    path = tmp_path / "tags.h5"
    with TimeTagWriter(path, timestamps_unit=1e-12, description="heralding station",
                       author="ionlink", detector_labels={0: "D0", 1: "D1"}) as writer:
        writer.append(ts, det)
    with h5py.File(path, "r") as f:
        assert f.attrs["format_name"] in ("Photon-HDF5", b"Photon-HDF5")
        assert f["photon_data/timestamps"].dtype == np.int64
        assert f["photon_data/detectors"].dtype == np.uint8
        assert f["photon_data/timestamps"].chunks is not None
        assert f["photon_data/timestamps"].compression is not None or f[
            "photon_data/timestamps"
        ]._filters
        assert f["photon_data/timestamps_specs/timestamps_unit"][()] == 1e-12
        assert f["description"][()] == b"heralding station"
        assert f["acquisition_duration"][()] > 0
        for name in ("num_pixels", "num_spots", "num_spectral_ch", "num_polarization_ch",
                     "num_split_ch", "modulated_excitation", "lifetime"):
            assert name in f["setup"], name
        assert f["setup/num_pixels"][()] == 4
        np.testing.assert_array_equal(f["setup/detectors/id"][()], [0, 1, 2, 5])
        assert f["setup/detectors/counts"][()].sum() == len(ts)
        for name in ("format_name", "format_version", "software", "creation_time"):
            assert name in f["identity"], name
        assert f["identity/author"][()] == b"ionlink"


def test_writer_rejects_disorder_and_bad_input(tmp_path):
    with TimeTagWriter(tmp_path / "a.h5") as writer:
        writer.append([10, 20], [0, 1])
        with pytest.raises(ValueError, match="before the last appended tag 20"):
            writer.append([19], [0])
        with pytest.raises(ValueError, match="decrease at index 2"):
            writer.append([30, 31, 25], [0, 0, 0])
        with pytest.raises(ValueError, match="differ in length"):
            writer.append([40, 41], [0])
        with pytest.raises(ValueError, match="0..255"):
            writer.append([40], [300])
        with pytest.raises(TypeError, match="integers"):
            writer.append([40.5], [0])
        writer.append([20, 21], [1, 1])  # equal to the last tag is allowed
        assert writer.n_tags == 4
    with pytest.raises(FileExistsError):
        TimeTagWriter(tmp_path / "a.h5")
    with pytest.raises(ValueError, match="timestamps_unit"):
        TimeTagWriter(tmp_path / "b.h5", timestamps_unit=0)
    with pytest.raises(ValueError, match="compression"):
        TimeTagWriter(tmp_path / "c.h5", compression="gzip-9")


def test_flush_survives_a_crash(tmp_path):
    path = tmp_path / "crash.h5"
    script = textwrap.dedent(
        f"""
        import os
        import numpy as np
        from analysis.timetags import TimeTagWriter
        writer = TimeTagWriter({str(path)!r}, chunk_tags=1000, flush_interval=None)
        writer.append(np.arange(2500, dtype=np.int64), np.zeros(2500, dtype=np.uint8))
        writer.flush()
        writer.append(np.arange(2500, 2600, dtype=np.int64), np.ones(100, dtype=np.uint8))
        os._exit(0)  # die without closing: the tags after the flush may be lost
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    with TimeTagReader(path) as reader:
        assert reader.n_tags == 2500
        timestamps, _ = reader.read()
    np.testing.assert_array_equal(timestamps, np.arange(2500))


def test_crash_safe_writer_killed_after_a_flush_keeps_the_flushed_tags(tmp_path):
    # After the flush, the partial last chunk (999 tags) is rewritten in full elsewhere and
    # 20 highly compressible chunks follow. With HDF5's default file-space strategy the
    # small new chunks land in the space the flushed index still points to (checked with
    # HDF5 2.0: the first 2999 timestamps then read back wrong); crash-safe must not.
    path = tmp_path / "killed.h5"
    script = textwrap.dedent(
        f"""
        import os, signal
        import numpy as np
        from analysis.timetags import TimeTagWriter
        rng = np.random.default_rng(1)
        ts, det = np.cumsum(rng.integers(0, 10**6, 3000)), rng.integers(0, 4, 3000)
        writer = TimeTagWriter({str(path)!r}, chunk_tags=1000, flush_interval=None,
                               crash_safe=True, detector_labels={{0: "D0", 3: "D3"}})
        writer.append(ts[:2999], det[:2999])
        writer.flush()
        writer.append(ts[2999:], det[2999:])
        writer.append(ts[-1] + np.arange(20_000), np.zeros(20_000, dtype=np.uint8))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], timeout=60, capture_output=True)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
    rng = np.random.default_rng(1)
    ts, det = np.cumsum(rng.integers(0, 10**6, 3000)), rng.integers(0, 4, 3000)
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r")  # still marked as being written (SWMR): h5clear -s clears it
    assert flushed_tag_count(path) == 2999
    with TimeTagReader(path) as reader:
        assert reader.flushed_tag_count == 2999 <= reader.n_tags
        assert reader.channels == [0, 1, 2, 3]
        timestamps, detectors = next(reader.iter_chunks(reader.flushed_tag_count))
    np.testing.assert_array_equal(timestamps, ts[:2999])
    np.testing.assert_array_equal(detectors, det[:2999])


def test_crash_safe_file_closed_normally_is_a_plain_photon_hdf5_file(tmp_path, tags):
    ts, det = tags
    path = tmp_path / "safe.h5"
    with TimeTagWriter(path, chunk_tags=4096, crash_safe=True, flush_interval=None,
                       detector_labels={0: "D0", 5: "D5"}) as writer:
        assert writer.crash_safe
        for start in range(0, len(ts), 5000):
            writer.append(ts[start : start + 5000], det[start : start + 5000])
            writer.flush()
    with h5py.File(path, "r") as f:  # no SWMR mark left: any HDF5 >= 1.10 reader opens it
        assert f.attrs["format_name"] in ("Photon-HDF5", b"Photon-HDF5")
        assert list(f["setup/detectors/id"][()]) == [0, 1, 2, 5]
        assert [x.decode() for x in f["setup/detectors/label"][()]] == ["D0", "", "", "D5"]
        assert f["setup/num_pixels"][()] == 4
    assert flushed_tag_count(path) == len(ts)
    with TimeTagReader(path) as reader:
        read_ts, read_det = reader.read()
        assert reader.acquisition_duration == pytest.approx((ts[-1] - ts[0]) * 1e-12)
    np.testing.assert_array_equal(read_ts, ts)
    np.testing.assert_array_equal(read_det, det)


def test_close_releases_the_file_when_the_final_flush_fails(tmp_path, monkeypatch):
    path = tmp_path / "fault.h5"
    writer = TimeTagWriter(path, chunk_tags=1000, flush_interval=None, crash_safe=True)
    writer.append(np.arange(500), np.zeros(500, dtype=np.uint8))
    writer.flush()
    writer.append(np.arange(500, 600), np.zeros(100, dtype=np.uint8))

    def no_space(self, offset, timestamps, detectors):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TimeTagWriter, "_write_range", no_space)
    with pytest.raises(OSError, match="No space left"):
        writer.close()
    writer.close()  # idempotent: already released
    with pytest.raises(AnalysisError, match="closed"):
        writer.append([700], [0])
    monkeypatch.undo()
    with TimeTagReader(path) as reader:  # closed cleanly, holding the flushed tags
        assert reader.flushed_tag_count == 500
        np.testing.assert_array_equal(reader.read()[0][:500], np.arange(500))


def test_automatic_flush_interval(tmp_path, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("analysis.timetags.io.time.monotonic", lambda: clock[0])
    path = tmp_path / "auto.h5"
    writer = TimeTagWriter(path, chunk_tags=1000, flush_interval=1.0)
    writer.append(np.arange(10), np.zeros(10, dtype=np.uint8))
    assert writer._file["photon_data/timestamps"].shape == (0,)
    clock[0] = 1.5
    writer.append(np.arange(10, 20), np.zeros(10, dtype=np.uint8))
    assert writer._file["photon_data/timestamps"].shape == (20,)
    writer.close()


def test_streaming_from_file_in_bounded_chunks_equals_in_memory(tmp_path, tags):
    ts, det = tags
    path = tmp_path / "tags.h5"
    with TimeTagWriter(path, chunk_tags=2048) as writer:
        writer.append(ts, det)
    in_memory = (ts, det)
    with TimeTagReader(path) as reader:
        sizes = [len(chunk_ts) for chunk_ts, _ in reader.iter_chunks(chunk_tags=1500)]
        assert max(sizes) == 1500 and len(sizes) > 10 and sum(sizes) == len(ts)
        assert coincidences(reader, 0, 1, 300, chunk_tags=1500) == coincidences(
            in_memory, 0, 1, 300
        )
        from_file = correlation(reader, 1, 0, 100, 64, chunk_tags=1500)
        from_memory = correlation(in_memory, 1, 0, 100, 64, duration=reader.acquisition_duration,
                                  timestamps_unit=1e-12)
        np.testing.assert_array_equal(from_file.counts, from_memory.counts)
        np.testing.assert_allclose(from_file.g2, from_memory.g2)
        h_file = heralded_events(reader, 2, [0, 1], -500, 3000, chunk_tags=1500)
        h_memory = heralded_events(in_memory, 2, [0, 1], -500, 3000)
        np.testing.assert_array_equal(h_file.counts, h_memory.counts)
        np.testing.assert_array_equal(h_file.first_times, h_memory.first_times)
        m_file = counts_between_markers(reader, 5, [0, 1, 2], chunk_tags=1500)
        m_memory = counts_between_markers(in_memory, 5, [0, 1, 2])
        np.testing.assert_array_equal(m_file.counts, m_memory.counts)
        rates = count_rates(reader, chunk_tags=1500)
        assert rates.duration_s == reader.acquisition_duration
        assert sum(rates.counts.values()) == len(ts)


def test_truncated_and_foreign_files_are_malformed(tmp_path, tags):
    ts, det = tags
    path = tmp_path / "tags.h5"
    with TimeTagWriter(path, chunk_tags=2048) as writer:
        writer.append(ts, det)
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MalformedFileError, match="cut.h5"):
        with TimeTagReader(cut) as reader:
            reader.read()
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(3)
    with pytest.raises(MalformedFileError, match="missing /photon_data/timestamps"):
        TimeTagReader(foreign)
    no_unit = tmp_path / "no_unit.h5"
    with h5py.File(no_unit, "w") as f:
        f["photon_data/timestamps"] = np.arange(3)
    with pytest.raises(MalformedFileError, match="timestamps_unit"):
        TimeTagReader(no_unit)
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(MalformedFileError, match="not a readable HDF5"):
        TimeTagReader(text)


def test_single_detector_file_without_detectors_array(tmp_path):
    path = tmp_path / "single.h5"
    with h5py.File(path, "w") as f:
        f["photon_data/timestamps"] = np.array([1, 5, 9], dtype=np.int64)
        f["photon_data/timestamps_specs/timestamps_unit"] = 1e-9
    with TimeTagReader(path) as reader:
        timestamps, detectors = reader.read()
        assert reader.channels == [0]
        assert reader.acquisition_duration is None
    np.testing.assert_array_equal(detectors, [0, 0, 0])
    rates = count_rates(TimeTagReader(path))
    assert rates.rates_hz[0] == pytest.approx(3 / 8e-9)


@pytest.mark.parametrize("crash_safe", [False, True])
def test_files_follow_photon_hdf5_conventions_readers_check(tmp_path, tags, crash_safe):
    """What phconvert's validator (the Photon-HDF5 reference reader) checks: every node
    titled with the format's official description, strings of fixed length (PyTables
    reads no variable-length strings), the mandatory /setup and /identity fields."""
    from analysis.timetags.io import PHOTON_HDF5_TITLES

    ts, det = tags
    path = tmp_path / "tags.h5"
    with TimeTagWriter(path, description="station", author="lab", crash_safe=crash_safe,
                       detector_labels={0: "D0", 5: "herald"}) as writer:
        writer.append(ts[:1000], det[:1000])
    nodes: dict[str, h5py.HLObject] = {}
    with h5py.File(path, "r") as f:
        nodes["/"] = f
        f.visititems(lambda name, node: nodes.update({"/" + name: node}))  # None: go on
        for name, node in nodes.items():
            assert node.attrs["TITLE"] == PHOTON_HDF5_TITLES[name].encode(), name
            for value in [*node.attrs.values(), *(
                    [node[()]] if isinstance(node, h5py.Dataset) else [])]:
                assert not isinstance(value, str), (name, value)  # variable-length string
            if isinstance(node, h5py.Dataset) and node.dtype.kind in "SO":
                info = h5py.check_string_dtype(node.dtype)
                assert info is not None and info.length is not None, name
        for field in ("num_pixels", "num_spots", "num_spectral_ch", "num_polarization_ch",
                      "num_split_ch", "modulated_excitation", "lifetime",
                      "excitation_alternated"):
            assert f"/setup/{field}" in nodes, field
        for field in ("format_name", "format_version", "format_url", "software",
                      "software_version", "creation_time"):
            assert f"/identity/{field}" in nodes, field
        assert f.attrs["format_version"] == b"0.5"
        assert list(f["setup/detectors/label"][()]) == [b"D0", b"", b"", b"herald"]
    with TimeTagReader(path) as reader:
        np.testing.assert_array_equal(reader.read()[0], ts[:1000])
