"""Tests of analysis.results: reading ARTIQ master results files and finding them."""

import datetime as dt
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from analysis.errors import AnalysisError, MalformedFileError
from analysis.results import find, iter_results, load, load_rid

START_TIME = 1_700_000_000  # 2023-11-14 22:13:20 UTC


def write_results_file(
    root: Path,
    rid: int,
    class_name: str = "Heralding",
    start_time: int = START_TIME,
    datasets: dict | None = None,
    archive: dict | None = None,
    metadata: dict | None = None,
    arguments: dict | None = None,
) -> Path:
    """Write a small file in the ARTIQ master layout; return its path."""
    when = dt.datetime.fromtimestamp(start_time, tz=dt.timezone.utc)
    directory = root / when.strftime("%Y-%m-%d") / when.strftime("%H")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{rid:09d}-{class_name}.h5"
    expid = {
        "file": "repository/heralding.py",
        "class_name": class_name,
        "arguments": arguments if arguments is not None else {"n": 100},
        "log_level": 30,
        "repo_rev": "abc123",
    }
    with h5py.File(path, "w") as f:
        f["artiq_version"] = "8.0+ionlink"
        f["rid"] = rid
        f["start_time"] = start_time
        f["run_time"] = start_time + 0.25
        f["expid"] = json.dumps(expid)
        group = f.create_group("datasets")
        for key, value in (datasets or {}).items():
            group[key] = value
            for attr, attr_value in (metadata or {}).get(key, {}).items():
                group[key].attrs[attr] = attr_value
        group = f.create_group("archive")
        for key, value in (archive or {}).items():
            group[key] = value
    return path


def test_load_reads_header_and_datasets(tmp_path):
    counts = np.arange(1000, dtype=np.int64)
    path = write_results_file(
        tmp_path,
        rid=42,
        datasets={"heralding.attempts": counts, "heralding.rate": 12.5, "label": "ok"},
        archive={"calib.pi_time": 5e-6},
        metadata={"heralding.rate": {"unit": "Hz", "scale": 1.0, "precision": 3}},
    )
    with load(path) as results:
        assert results.rid == 42
        assert results.start_time == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.timezone.utc)
        assert results.run_time == pytest.approx(START_TIME + 0.25)
        assert results.class_name == "Heralding"
        assert results.arguments == {"n": 100}
        assert results.expid["repo_rev"] == "abc123"
        assert results.artiq_version == "8.0+ionlink"
        assert set(results.datasets) == {"heralding.attempts", "heralding.rate", "label"}
        assert len(results.datasets) == 3
        np.testing.assert_array_equal(results.datasets["heralding.attempts"], counts)
        assert results.datasets["heralding.rate"] == 12.5
        assert results.datasets["label"] == "ok"
        assert results.datasets.shape("heralding.attempts") == (1000,)
        assert results.datasets.metadata("heralding.rate") == {
            "unit": "Hz",
            "scale": 1.0,
            "precision": 3,
        }
        assert results.datasets.metadata("label") == {}
        assert results.archive["calib.pi_time"] == 5e-6
        with pytest.raises(KeyError, match="nope"):
            results.datasets["nope"]
    with pytest.raises(AnalysisError, match="closed"):
        results.datasets["label"]


def test_dotted_keys_are_names_not_groups(tmp_path):
    path = write_results_file(tmp_path, rid=1, datasets={"a.b.c": 3})
    with h5py.File(path, "r") as f:
        assert isinstance(f["datasets"]["a.b.c"], h5py.Dataset)
    with load(path) as results:
        assert results.datasets["a.b.c"] == 3


def test_truncated_file_is_malformed(tmp_path):
    path = write_results_file(tmp_path, rid=7, datasets={"x": np.arange(100_000)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MalformedFileError, match=str(path.name)):
        load(path)


def test_not_hdf5_is_malformed(tmp_path):
    path = tmp_path / "000000001-Foo.h5"
    path.write_text("this is not HDF5")
    with pytest.raises(MalformedFileError, match="not a readable HDF5"):
        load(path)


def test_foreign_hdf5_names_what_is_missing(tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f["rid"] = 3
        f["something"] = np.zeros(3)
    with pytest.raises(MalformedFileError, match="start_time, expid, datasets/") as info:
        load(path)
    assert "foreign.h5" in str(info.value)


def test_bad_expid_is_malformed(tmp_path):
    path = write_results_file(tmp_path, rid=9)
    with h5py.File(path, "a") as f:
        del f["expid"]
        f["expid"] = "{not json"
    with pytest.raises(MalformedFileError, match="expid"):
        load(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.h5")


def test_find_filters(tmp_path):
    hour = 3600
    day = 24 * hour
    a = write_results_file(tmp_path, rid=1, class_name="Heralding", start_time=START_TIME)
    b = write_results_file(tmp_path, rid=2, class_name="Calib", start_time=START_TIME + hour)
    c = write_results_file(tmp_path, rid=3, class_name="Heralding", start_time=START_TIME + day)
    assert find(tmp_path) == [a, b, c]
    assert find(tmp_path, rid=2) == [b]
    assert find(tmp_path, class_name="Heralding") == [a, c]
    assert find(tmp_path, day="2023-11-14") == [a, b]
    assert find(tmp_path, day=dt.date(2023, 11, 15)) == [c]
    assert find(tmp_path, day=("2023-11-14", "2023-11-15")) == [a, b, c]
    assert find(tmp_path, hour=22) == [a, c]
    assert find(tmp_path, hour=(23, 23)) == [b]
    assert find(tmp_path, day="2023-11-15", hour=(0, 5)) == []
    with pytest.raises(ValueError, match="hour"):
        find(tmp_path, hour=24)
    with pytest.raises(ValueError, match="day"):
        find(tmp_path, day="14/11/2023")
    with pytest.raises(AnalysisError, match="not a directory"):
        find(tmp_path / "missing")


def test_scans_skip_malformed_with_warning(tmp_path):
    good = write_results_file(tmp_path, rid=5)
    bad = good.parent / "000000006-Broken.h5"
    bad.write_bytes(b"\x00" * 100)
    odd_name = good.parent / "notarid.h5"
    odd_name.write_bytes(b"")
    (tmp_path / "not-a-day").mkdir()
    with pytest.warns(UserWarning) as record:
        paths = find(tmp_path)
    assert paths == [good, bad]
    messages = " ".join(str(w.message) for w in record)
    assert "notarid.h5" in messages and "not-a-day" in messages
    with pytest.warns(UserWarning) as record:
        opened = list(iter_results(tmp_path))
    assert any("000000006-Broken.h5" in str(w.message) for w in record)
    assert [r.rid for r in opened] == [5]
    for results in opened:
        results.close()


def test_load_rid(tmp_path):
    write_results_file(tmp_path, rid=11, datasets={"x": 1})
    with load_rid(tmp_path, 11) as results:
        assert results.datasets["x"] == 1
    with pytest.raises(AnalysisError, match="rid 12"):
        load_rid(tmp_path, 12)


# ----------------------------------------------------------------------------- PYON expid

# As sipyco.pyon.encode writes them (encode_str: double quotes; tuples "(x, )"; numbers repr;
# numpy arrays nparray(shape, dtype.str, b"<base64>"); numpy scalars npscalar(...)).
PYON_EXPID = ('{"arguments": {"n": 100, "freqs": nparray((3, ), "<f8", '
              'b"AAAAAAAA8D8AAAAAAAAAQAAAAAAAAAhA"), "t": npscalar("<i4", b"BwAAAA=="), '
              '"window": (1e-09, -inf), "z": (1-2j), "flag": true, "none": null, '
              '"frac": Fraction(1, 3), "s": slice(1, 5, None), "tags": {1, 2}, '
              '"q": "say \\"hi\\"\\n"}, "class_name": "Heralding", '
              '"file": "repository/heralding.py", "log_level": 30, "repo_rev": "abc123", '
              '"od": OrderedDict([("a", 1), ("b", [2, 3.5])]), 7: nan}')


def test_pyon_expid_is_decoded(tmp_path):
    from fractions import Fraction

    path = write_results_file(tmp_path, rid=5)
    with h5py.File(path, "a") as f:
        del f["expid"]
        f["expid"] = PYON_EXPID
    with load(path) as results:
        assert results.class_name == "Heralding"
        args = results.arguments
    np.testing.assert_array_equal(args["freqs"], [1.0, 2.0, 3.0])
    assert args["t"] == 7 and args["t"].dtype == np.int32
    assert args["window"] == (1e-9, -np.inf)
    assert args["z"] == 1 - 2j
    assert args["flag"] is True and args["none"] is None
    assert args["frac"] == Fraction(1, 3) and args["s"] == slice(1, 5, None)
    assert args["tags"] == {1, 2} and args["q"] == 'say "hi"\n'
    assert list(results.expid["od"].items()) == [("a", 1), ("b", [2, 3.5])]
    assert np.isnan(results.expid[7])


@pytest.mark.parametrize("text", [
    '{"class_name": __import__("os").system("true")}',   # call of a non-PYON name
    '{"class_name": "A", "x": open.__doc__}',            # attribute access
    '{"class_name": "A", "x": 1 * 2}',                   # arithmetic
    '{"class_name": "A", "x": [i for i in (1, 2)]}',     # comprehension
    '{"class_name": "A", "x": nparray((2, ), "<f8", b"%%%")}',  # bad base64
    '["class_name"]',                                    # not a dict
])
def test_unsafe_or_bad_pyon_expid_is_malformed(tmp_path, text):
    path = write_results_file(tmp_path, rid=6)
    with h5py.File(path, "a") as f:
        del f["expid"]
        f["expid"] = text
    with pytest.raises(MalformedFileError, match="expid"):
        load(path)


def test_pyon_round_trip_of_plain_values():
    from analysis import pyon

    value = {"a": [1, -2.5, "x"], "b": (True, None), (1, 2): {"c": b"\x00\x01"}}
    assert pyon.decode(repr(value)) == value
    with pytest.raises(pyon.PyonError, match=r"unknown name 'os' in PYON .*\(line 1, column 7\)"):
        pyon.decode("{'a': os}")


def test_expid_written_by_the_ionlink_runner_encoder_is_decoded():
    from analysis import pyon
    from ionlink.runner import pyon as runner_pyon

    value = {"class_name": "Heralding", "arguments": {
        "freqs": np.linspace(0.0, 1.0, 5), "n": np.int64(3), "empty": set(), "t": (1e-6,),
        "c": 0.5 - 1j, "nested": [{"a": None, "b": float("inf")}]}}
    decoded = pyon.decode(runner_pyon.encode(value))
    args = decoded["arguments"]
    np.testing.assert_array_equal(args["freqs"], value["arguments"]["freqs"])
    assert args["n"] == 3 and args["empty"] == set() and args["t"] == (1e-6,)
    assert args["c"] == 0.5 - 1j and args["nested"] == [{"a": None, "b": float("inf")}]


# PYON v2 (sipyco.pyon since 2025, ARTIQ master): JSON with {"__jsonclass__": [name, args]},
# spelled here as sipyco's registry encodes each type (tuple -> [data], set -> [[items]],
# OrderedDict/dict -> [[[k, v], ...]], nparray -> [shape, dtype.str, base64 text], ...).
PYON_V2_EXPID = (
    '{"arguments":{"freqs":{"__jsonclass__":["nparray",[[3],"<f8",'
    '"AAAAAAAA8D8AAAAAAAAAQAAAAAAAAAhA"]]},'
    '"t":{"__jsonclass__":["npscalar",["<i4","BwAAAA=="]]},'
    '"ok":{"__jsonclass__":["npscalar",["|b1","AQ=="]]},'
    '"window":{"__jsonclass__":["tuple",[[1e-09,-Infinity]]]},'
    '"z":{"__jsonclass__":["complex",[1.0,-2.0]]},'
    '"raw":{"__jsonclass__":["bytes",["AAE="]]},'
    '"tags":{"__jsonclass__":["set",[[1,2]]]},'
    '"s":{"__jsonclass__":["slice",[1,5,null]]},'
    '"frac":{"__jsonclass__":["Fraction",[1,3]]},'
    '"od":{"__jsonclass__":["OrderedDict",[[["a",1],["b",[2,3.5]]]]]},'
    '"keyed":{"__jsonclass__":["dict",[[[{"__jsonclass__":["tuple",[[1,2]]]},"x"]]]]},'
    '"bad":NaN,"smile":"\\ud83d\\ude00\\u00e9"},\n'
    '    "class_name":"Heralding"}')


def test_pyon_v2_as_artiq_master_writes_it_is_decoded():
    from fractions import Fraction

    from analysis import pyon

    expid = pyon.decode(PYON_V2_EXPID)
    args = expid["arguments"]
    assert expid["class_name"] == "Heralding"
    np.testing.assert_array_equal(args["freqs"], [1.0, 2.0, 3.0])
    assert args["t"] == 7 and args["t"].dtype == np.int32 and args["ok"] is np.True_
    assert args["window"] == (1e-9, -np.inf) and args["z"] == 1 - 2j
    assert args["raw"] == b"\x00\x01" and args["tags"] == {1, 2}
    assert args["s"] == slice(1, 5, None) and args["frac"] == Fraction(1, 3)
    assert type(args["od"]).__name__ == "OrderedDict"
    assert list(args["od"].items()) == [("a", 1), ("b", [2, 3.5])]
    assert args["keyed"] == {(1, 2): "x"} and np.isnan(args["bad"])
    assert args["smile"] == "\U0001F600\u00e9"  # JSON's surrogate pair joined


@pytest.mark.parametrize("text, message", [
    # where: line and column in the text as given, and the offending line quoted
    ('{\n    "a": 1,\n    "b": os\n}',
     """unknown name 'os' in PYON '    "b": os' .line 3, column 10."""),
    ("\n\n  [1, x]", r"unknown name 'x' in PYON '  \[1, x\]' .line 3, column 7."),
    ('["\u00e9\u00e9", x]', r"unknown name 'x' .* .line 1, column 8."),
    ("[" + "1, " * 40 + "oops]",
     r"unknown name 'oops' in PYON '\.\.\. 1, 1, .*oops\]' .line 1, column 122."),
    ('{\n "a": [1,\n}', r"malformed PYON '}': .* .line 3, column 1."),
    # what: every bad input is a PYONDecodeError, never a stray TypeError/ZeroDivisionError
    ("Fraction(1, 0)", r"invalid Fraction\(...\): ZeroDivisionError: .*column 1"),
    ("{[1], 2}", "invalid dict key or set element: unhashable type: 'list'"),
    ("[" * 3000 + "]" * 3000, "nested too deeply|too many nested|malformed PYON"),
    ('npscalar("<i4", b"AQAAAAIAAAA=")', "npscalar data must hold exactly one value, not 2"),
    ('nparray((2, ), "O", b"")', "object arrays are not allowed"),
    ('{"__jsonclass__": ["eval", ["1"]]}', "unknown __jsonclass__ type 'eval'"),
    ('{"__jsonclass__": "tuple"}', r"'__jsonclass__' must hold \[name, \[arguments\]\]"),
    ('{"__jsonclass__": ["complex", ["1", 2]]}', r"invalid complex.*TypeError: complex parts"),
    (b"[1, \xff]", "PYON bytes are not UTF-8"),
    ("  \n ", "the text is empty"),
])
def test_pyon_errors_name_what_is_wrong_and_where(text, message):
    from analysis import pyon
    from analysis.errors import AnalysisError

    with pytest.raises(pyon.PYONDecodeError, match=message) as raised:
        pyon.decode(text)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, AnalysisError)


def test_pyon_reads_utf8_bytes_json_and_python_literals():
    from analysis import pyon

    assert pyon.decode(b'{"a": [NaN, -Infinity, null, true]}')["a"][1:] == [-np.inf, None, True]
    assert pyon.decode("(None, True, False)") == (None, True, False)
    assert pyon.decode('"\\u00e9\\ud83d"') == "\u00e9\ud83d"  # a lone surrogate stays


def test_datasets_are_read_only_when_used(tmp_path, monkeypatch):
    big = np.arange(2_000_000, dtype=np.float64)
    path = write_results_file(tmp_path, rid=21, datasets={"big": big, "small": 3},
                              metadata={"big": {"unit": "s"}})
    reads: list[str] = []
    original = h5py.Dataset.__getitem__

    def recording_getitem(self, key):
        reads.append(self.name)
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", recording_getitem)
    with load(path) as results:
        assert "big" in results.datasets and set(results.datasets) == {"big", "small"}
        assert results.datasets.shape("big") == (2_000_000,)
        assert results.datasets.metadata("big") == {"unit": "s"}
        assert results.datasets["small"] == 3
        assert "/datasets/big" not in reads          # header, listing, shape, attrs, other keys
        np.testing.assert_array_equal(results.datasets["big"], big)
    assert reads.count("/datasets/big") == 1


def test_corrupt_dataset_is_reported_when_read_naming_file_and_dataset(tmp_path):
    path = write_results_file(tmp_path, rid=22, datasets={"ok": 1})
    with h5py.File(path, "a") as f:
        f["datasets"].create_dataset("counts", data=np.arange(50_000), chunks=(50_000,),
                                     compression="gzip")
        offset = f["datasets/counts"].id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as raw:      # damage the compressed chunk, keep the file's size
        raw.seek(offset)
        raw.write(b"\xff" * 64)
    with load(path) as results:         # header and other datasets still readable
        assert results.rid == 22 and results.datasets["ok"] == 1
        assert results.datasets.shape("counts") == (50_000,)
        with pytest.raises(MalformedFileError, match="cannot read datasets/counts") as info:
            results.datasets["counts"]
    assert path.name in str(info.value)


def test_pyon_v2_expid_of_an_artiq_master_file_is_decoded(tmp_path):
    """A results file whose /expid is PYON v2 (JSON text with __jsonclass__ objects) gives
    the arguments' real types, not the raw JSON objects json.loads would leave."""
    path = write_results_file(tmp_path, rid=6)
    with h5py.File(path, "a") as f:
        del f["expid"]
        f["expid"] = PYON_V2_EXPID
    with load(path) as results:
        args = results.arguments
    assert args["window"] == (1e-9, -np.inf) and args["tags"] == {1, 2}
    np.testing.assert_array_equal(args["freqs"], [1.0, 2.0, 3.0])
