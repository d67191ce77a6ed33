"""The aqctl_* controllers as processes on loopback, driven through sipyco.pc_rpc.Client
(real sipyco where installed, ionlink's stand-in otherwise)."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sipyco.pc_rpc import Client

import ionlink  # noqa: F401  (serves sipyco where it is not installed)
from analysis.timetags.io import TimeTagReader
from drivers.timetagger.driver import TimeTaggerDriver
from drivers.timetagger.streaming import detector_labels, flushed_tag_count
from drivers.wavemeter.driver import WavemeterDriver
from ionlink.sipyco_api.sipyco_rpctool import list_methods
from tests.test_sipyco_standin import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]


def start_controller(module: str, *args: str):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", module, "-p", str(port),
                             "--no-localhost-bind", "--bind", "127.0.0.1", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"controller did not start: {err.decode()[-2000:]}") from None
    return proc, port


def stop_controller(proc, port):
    if proc.poll() is None:
        c = Client("127.0.0.1", port)
        try:
            c.terminate()
        finally:
            c.close_rpc()
        proc.wait(10)
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]


def test_timetagger_controller(tmp_path):
    proc, port = start_controller("drivers.timetagger.aqctl_timetagger", "--simulation",
                                  "--sim-rate", "2e5", "--channels", "1=det_station_0,2=pmt_a")
    try:
        a = Client("127.0.0.1", port)
        assert a.ping() is True
        assert a.get_channels() == {1: "det_station_0", 2: "pmt_a"}
        methods = a.get_rpc_method_list()["methods"]
        assert "Mean count rate (Hz)" in methods["count_rates"][1]
        listing = list_methods(a)
        assert "count_rates(channels: list, duration_s: float) -> list" in listing
        rates = a.count_rates([1, 2], 0.05)
        for r in rates:                                # 2e5 Hz, 1e4 expected: 5 sigma
            assert abs(r * 0.05 - 1e4) < 5 * 100
        with pytest.raises(Exception, match="unknown tagger channel 5"):
            a.count_rates([5], 0.01)
        name = a.start_stream(str(tmp_path), prefix="rpc", max_file_s=0.5)
        assert name == "rpc"
        time.sleep(0.3)
        a.close_rpc()                                  # client A disconnects mid-stream
        b = Client("127.0.0.1", port)
        with pytest.raises(Exception, match="already running"):
            b.start_stream(str(tmp_path), prefix="other")
        s1 = b.stream_status()
        time.sleep(0.3)
        s2 = b.stream_status()
        assert s2["running"] and s2["n_tags"] > s1["n_tags"] > 0
        summary = b.stop_stream()
        assert summary["n_dropped"] == 0 and len(summary["files"]) >= 2
        n = 0
        for f in summary["files"]:
            with TimeTagReader(f) as r:
                t, _ = r.read()
            n += len(t)
        assert n == summary["n_tags"]
        # crash: the open file keeps every tag flushed up to ~1 s before the kill
        b.start_stream(str(tmp_path), prefix="crash", max_file_s=60.0)
        time.sleep(0.2)
        before = b.stream_status()["n_tags"]
        time.sleep(1.3)
        b.close_rpc()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        crashed = tmp_path / "crash_00000.h5"
        valid = flushed_tag_count(crashed)
        with TimeTagReader(crashed) as r:
            t, d = next(r.iter_chunks(valid))
        assert valid >= before > 0
        assert np.all(np.diff(t) >= 0) and set(np.unique(d)) == {1, 2}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_timetagger_controller_streams_a_coincidence_channel(tmp_path):
    rate, tau = 2e5, 1e-7
    proc, port = start_controller("drivers.timetagger.aqctl_timetagger", "--simulation",
                                  "--sim-rate", str(rate), "--channels",
                                  "1=det_station_0,2=det_station_1")
    try:
        c = Client("127.0.0.1", port)
        try:
            v = c.define_coincidence([1, 2], tau)
            assert c.get_channels()[v] == "coincidence(1,2)"
            c.start_stream(str(tmp_path), channels=[1, v], prefix="heralds")
            time.sleep(0.3)
            summary = c.stop_stream()
        finally:
            c.close_rpc()
        stop_controller(proc, port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with TimeTagReader(summary["files"][0]) as r:
        t, d = r.read()
    assert np.all(np.diff(t) >= 0) and set(np.unique(d)) == {1, 100}
    assert detector_labels(summary["files"][0]) == {1: "det_station_0",
                                                   100: "coincidence(1,2)"}
    # independent Poisson inputs: each coincidence consumes one channel-1 tag; per tag of
    # channel 1 the other channel clicks within tau with probability ~ 1 - e^(-2 R tau)
    # (4 % correction for tags already used), so coincidences / channel-1 tags ~ that
    n1, nv = int(np.count_nonzero(d == 1)), int(np.count_nonzero(d == 100))
    expected = n1 * (1 - np.exp(-2 * rate * tau))
    assert n1 > 10_000
    assert abs(nv - expected) < 5 * np.sqrt(expected) + 0.05 * expected


def test_wavemeter_controller_locks_a_laser():
    proc, port = start_controller("drivers.wavemeter.aqctl_wavemeter", "--simulation",
                                  "--channels", "1=397_a,2=866_a",
                                  "--actuators", "866_a=dac:dac_a:30:8e7",
                                  "--update-interval", "0.02")
    try:
        c = Client("127.0.0.1", port)
        try:
            assert c.ping() is True
            f0 = c.get_frequency("866_a")
            assert abs(f0 - 346.000235e12) < 200e6      # free-running within its drift
            assert c.get_wavelength("397_a") == pytest.approx(396.96e-9, abs=0.01e-9)
            with pytest.raises(Exception, match="laser '729_a' is on no wavemeter channel"):
                c.get_frequency("729_a")
            with pytest.raises(Exception, match="397_a has no actuator"):
                c.lock("397_a", 755.2e12)
            target = f0 + 30e6
            c.lock("866_a", target, kp=0.4, ki=4.0, tolerance_hz=1e6)
            deadline = time.monotonic() + 10
            while c.lock_status("866_a")["state"] != "locked":
                assert time.monotonic() < deadline, c.lock_status("866_a")
                time.sleep(0.05)
            assert abs(c.get_frequency("866_a") - target) < 2e6
            hist = c.error_history("866_a", 50)
            assert len(hist["error_hz"]) == len(hist["t_s"]) > 0
            c.set_target("866_a", target + 2e9)           # far outside the capture range
            time.sleep(0.2)
            assert "capture range" in c.alarms()["866_a"]
            assert c.lock_status("866_a")["state"] == "out_of_range"
            c.unlock("866_a")
            assert c.alarms() == {}
        finally:
            c.close_rpc()
        stop_controller(proc, port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("cls", [TimeTaggerDriver, WavemeterDriver])
def test_rpc_annotations_are_listable_by_real_sipyco(cls):
    # sipyco's get_rpc_method_list sends annotation.__name__: every annotation must have one
    for name, method in inspect.getmembers(cls, inspect.isfunction):
        if name.startswith("_"):
            continue
        for key, ann in inspect.getfullargspec(method).annotations.items():
            assert hasattr(ann, "__name__"), (name, key, ann)


def test_resolve_alias_follows_aliases_and_names_the_bad_entry():
    # the one resolver, shared by the device manager and the simulated controllers
    from ionlink.runner.devices import DeviceError, resolve_alias

    ddb = {"det": "det_b", "det_b": "ttl_in", "ttl_in": {"type": "local"},
           "loop_a": "loop_b", "loop_b": "loop_a", "self": "self",
           "dangling": "via", "via": "nowhere"}
    assert resolve_alias(ddb, "det", KeyError, "device") == "ttl_in"
    assert resolve_alias(ddb, "ttl_in", KeyError, "device") == "ttl_in"
    with pytest.raises(ValueError,
                       match="alias loop resolving 'loop_a' .device.: loop_a -> loop_b -> loop_a"):
        resolve_alias(ddb, "loop_a", ValueError, "device")
    with pytest.raises(ValueError, match="'self' .device.: self -> self"):
        resolve_alias(ddb, "self", ValueError, "device")
    with pytest.raises(ValueError, match="tagger channel 'dangling' is not in the device database "
                                         r"\(alias dangling -> via -> nowhere: 'nowhere' has no"):
        resolve_alias(ddb, "dangling", ValueError, "tagger channel")
    with pytest.raises(DeviceError, match="^device 'absent' is not in the device database$"):
        resolve_alias(ddb, "absent")


def test_wavemeter_resolver_names_the_actuator_and_its_alias_chain():
    from drivers.wavemeter.config import ConfigError
    from drivers.wavemeter.simulation import resolver

    resolve = resolver({"piezo": "dac_x", "dac_x": {"type": "local"}, "bad": "gone"})
    assert resolve("piezo") == "dac_x"
    with pytest.raises(ConfigError, match="actuator device 'bad' is not in the device "
                                          r"database \(alias bad -> gone: 'gone' has no entry\)"):
        resolve("bad")
