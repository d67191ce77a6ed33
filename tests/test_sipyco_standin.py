"""ionlink's sipyco stand-in: pc_rpc protocol, packed exceptions, common args, rpctool."""

from __future__ import annotations

import argparse
import importlib.machinery
import socket
import threading
import time

import numpy as np
import pytest

import ionlink  # noqa: F401
from ionlink.sipyco_api import common_args, pc_rpc
from ionlink.sipyco_api.packed_exceptions import GenericRemoteException
from ionlink.sipyco_api.sipyco_rpctool import list_methods

REAL_SIPYCO = importlib.machinery.PathFinder.find_spec("sipyco") is not None


class CustomError(Exception):
    pass


class Target:
    """A test target."""

    def __init__(self):
        self.calls = 0

    def add(self, a: int, b: int = 2) -> int:
        """Add two numbers."""
        self.calls += 1
        return a + b

    def double(self, x: np.ndarray) -> np.ndarray:
        return 2 * x

    def fail_builtin(self, text: str):
        raise KeyError(text)

    def fail_custom(self):
        raise CustomError("custom failure")

    def slow(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def _private(self):
        return "hidden"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


class ThreadedServer:
    """simple_server_loop in a background thread (no signal handling there)."""

    def __init__(self, targets, loop_fn=pc_rpc.simple_server_loop):
        self.port = free_port()
        self.error = None

        def run():
            try:
                loop_fn(targets, "127.0.0.1", self.port, description="test server")
            except BaseException as e:       # surfaced by stop()
                self.error = e
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        wait_for_port(self.port)

    def stop(self, client_cls=pc_rpc.Client):
        c = client_cls("127.0.0.1", self.port)
        try:
            c.terminate()
        finally:
            c.close_rpc()
        self.thread.join(10)
        assert not self.thread.is_alive()
        if self.error:
            raise self.error


@pytest.fixture
def server():
    target = Target()
    s = ThreadedServer({"test": target})
    s.target = target
    yield s
    s.stop()


def test_calls_arrays_and_identification(server):
    c = pc_rpc.Client("127.0.0.1", server.port)
    try:
        assert c.get_selected_target() == "test"
        assert c.get_rpc_id() == (["test"], "test server")
        assert c.add(1) == 3 and c.add(1, b=5) == 6
        x = np.arange(6, dtype=np.int64).reshape(2, 3)
        assert np.array_equal(c.double(x), 2 * x)
        assert server.target.calls == 2
        with pytest.raises(AttributeError):
            _ = c._private
        with pytest.raises(AttributeError):
            _ = c.no_such_method
    finally:
        c.close_rpc()


def test_remote_exceptions_are_reraised(server):
    c = pc_rpc.Client("127.0.0.1", server.port, "test")
    try:
        with pytest.raises(KeyError, match="boom"):
            c.fail_builtin("boom")
        with pytest.raises(GenericRemoteException, match="CustomError: custom failure"):
            c.fail_custom()
        with pytest.raises(TypeError):
            c.add()
        assert c.add(2, 2) == 4                      # the connection survives errors
    finally:
        c.close_rpc()


def test_wrong_target_and_auto_target(server):
    with pytest.raises(pc_rpc.IncompatibleServer, match="valid target name"):
        pc_rpc.Client("127.0.0.1", server.port, "other")
    c = pc_rpc.Client("127.0.0.1", server.port, None)
    try:
        assert c.get_selected_target() is None
        c.select_rpc_target("test")
        assert c.add(0, 0) == 0
    finally:
        c.close_rpc()


def test_client_disconnecting_mid_call_leaves_the_server_serving(server):
    raw = socket.create_connection(("127.0.0.1", server.port))
    raw.sendall(b"ARTIQ pc_rpc\n")
    raw.recv(4096)
    raw.sendall(b"test\n")
    raw.recv(4096)
    raw.sendall(b'{"action": "call", "name": "slow", "args": (0.2,), "kwargs": {}}\n')
    raw.close()                                      # gone before the reply
    c = pc_rpc.Client("127.0.0.1", server.port)
    try:
        assert c.add(40) == 42
    finally:
        c.close_rpc()


def test_method_list_for_rpctool(server):
    c = pc_rpc.Client("127.0.0.1", server.port)
    try:
        doc = c.get_rpc_method_list()
        text = list_methods(c)
    finally:
        c.close_rpc()
    assert doc["docstring"] == "A test target."
    spec, docstring = doc["methods"]["add"]
    assert spec["args"] == ["self", "a", "b"] and spec["defaults"] == (2,)
    assert spec["annotations"] == {"a": "int", "b": "int", "return": "int"}
    assert docstring == "Add two numbers."
    assert "_private" not in doc["methods"] and "terminate" in doc["methods"]
    assert "add(a: int, b: int=2) -> int\n    Add two numbers." in text


def test_common_args():
    p = argparse.ArgumentParser()
    common_args.simple_network_args(p, 3250)
    common_args.verbosity_args(p)
    a = p.parse_args(["-p", "4000", "--bind", "10.0.0.1", "-vv"])
    assert a.port == 4000 and a.verbose == 2 and a.quiet == 0
    assert common_args.bind_address_from_args(a) == ["127.0.0.1", "::1", "10.0.0.1"]
    assert common_args.bind_address_from_args(
        p.parse_args(["--no-localhost-bind", "--bind", "x"])) == ["x"]
    assert common_args.bind_address_from_args(p.parse_args(["--bind", "*"])) is None
    p2 = argparse.ArgumentParser()
    common_args.simple_network_args(p2, [("proxy", "proxying", 1383), ("control", "ctl", 1384)])
    assert p2.parse_args([]).port_proxy == 1383


@pytest.mark.skipif(REAL_SIPYCO, reason="real sipyco installed: the stand-in is not served")
def test_import_hook_serves_the_stand_in():
    import sipyco.common_args
    import sipyco.pc_rpc

    assert sipyco.pc_rpc is pc_rpc and sipyco.common_args is common_args


@pytest.mark.skipif(not REAL_SIPYCO, reason="real sipyco is not installed")
def test_interoperates_with_real_sipyco():
    import sipyco.pc_rpc as real

    # real client -> stand-in server
    s = ThreadedServer({"test": Target()})
    c = real.Client("127.0.0.1", s.port)
    try:
        assert c.add(1, 2) == 3
        assert "add" in c.get_rpc_method_list()["methods"]
    finally:
        c.close_rpc()
    s.stop()
    # stand-in client -> real server
    s = ThreadedServer({"test": Target()}, loop_fn=_real_loop)
    c = pc_rpc.Client("127.0.0.1", s.port)
    try:
        assert c.add(1, 2) == 3
        assert np.array_equal(c.double(np.arange(3)), [0, 2, 4])
    finally:
        c.close_rpc()
    s.stop()


def _real_loop(targets, host, port, description=None):
    import asyncio

    import sipyco.pc_rpc as real

    loop = asyncio.new_event_loop()
    server = real.Server(targets, description, builtin_terminate=True)
    loop.run_until_complete(server.start(host, port))
    try:
        loop.run_until_complete(server.wait_terminate())
    finally:
        loop.run_until_complete(server.stop())
        loop.close()
