"""Remote procedure calls between PCs, with sipyco's names, signatures and wire protocol.

Protocol (one UTF-8 line per message, PYON v1 encoded):

1. client -> ``ARTIQ pc_rpc\\n``;
2. server -> ``{"targets": [...], "description": ..., "features": [...]}``;
3. client -> ``TARGET_NAME\\n`` (optionally followed by space-separated features; this
   stand-in offers and selects none, so real sipyco peers fall back to PYON v1);
4. server -> the set of callable names of the target;
5. then requests ``{"action": "call", "name", "args", "kwargs"}`` or
   ``{"action": "get_rpc_method_list"}``, each answered by ``{"status": "ok", "ret": ...}``
   or ``{"status": "failed", "exception": packed}``.

The server runs target methods on its asyncio loop one call at a time (unless
``allow_parallel``); coroutine methods are awaited. A client that disconnects mid-call only
loses its own connection.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import socket
import threading
from typing import Any

from ionlink.sipyco_api import pyon
from ionlink.sipyco_api.packed_exceptions import current_exc_packed, raise_packed_exc

__all__ = ["AutoTarget", "Client", "IncompatibleServer", "Server", "simple_server_loop"]

logger = logging.getLogger(__name__)

_INIT_STRING = b"ARTIQ pc_rpc\n"
_LINE_LIMIT = 64 * 1024 * 1024


class AutoTarget:
    """Target name for clients: select the server's only target."""


class IncompatibleServer(Exception):
    """The server does not have the target the client asked for."""


def _validate_target_name(target_name: Any, target_names: list[str]) -> str:
    if target_name is AutoTarget:
        if len(target_names) != 1:
            raise ValueError("Server has multiple targets: " + " ".join(sorted(target_names)))
        return target_names[0]
    if target_name not in target_names:
        raise IncompatibleServer("valid target name(s): " + " ".join(sorted(target_names)))
    return target_name


class Client:
    """Blocking client: remote methods of the selected target appear as local methods.

    :param host: server host name or address.
    :param port: TCP port.
    :param target_name: target to select; :class:`AutoTarget` picks the only one; ``None``
        selects none (use :meth:`select_rpc_target` later).
    :param timeout: socket timeout in seconds (None blocks).
    :param ssl_config: not supported by the stand-in (must be None).
    """

    def __init__(self, host: str, port: int, target_name: Any = AutoTarget,
                 timeout: float | None = None, ssl_config: Any = None):
        if ssl_config is not None:
            raise NotImplementedError("ionlink's sipyco stand-in has no SSL; install sipyco")
        self.__socket = socket.create_connection((host, port), timeout)
        self.__buffer = b""
        try:
            self.__socket.sendall(_INIT_STRING)
            ident = self.__recv()
            self.__target_names = ident["targets"]
            self.__description = ident["description"]
            self.__selected_target: str | None = None
            self.__valid_methods: set[str] = set()
            if target_name is not None:
                self.select_rpc_target(target_name)
        except BaseException:
            self.__socket.close()
            raise

    def select_rpc_target(self, target_name: Any) -> None:
        """Select a target by name (once, when created with ``target_name=None``)."""
        target_name = _validate_target_name(target_name, self.__target_names)
        self.__socket.sendall((target_name + "\n").encode())
        self.__selected_target = target_name
        self.__valid_methods = set(self.__recv())

    def get_selected_target(self) -> str | None:
        """The selected target name, or None."""
        return self.__selected_target

    def get_rpc_id(self) -> tuple[list[str], str | None]:
        """``(target_names, description)`` as the server announced them."""
        return self.__target_names, self.__description

    def get_local_host(self) -> str:
        """Address of the local end of the connection."""
        return self.__socket.getsockname()[0]

    def close_rpc(self) -> None:
        """Close the connection; no calls afterwards."""
        self.__socket.close()

    def __send(self, obj: Any) -> None:
        self.__socket.sendall((pyon.encode(obj) + "\n").encode())

    def __recv(self) -> Any:
        while b"\n" not in self.__buffer:
            more = self.__socket.recv(65536)
            if not more:
                raise EOFError("Connection closed before a full line was received.")
            self.__buffer += more
        line, _, self.__buffer = self.__buffer.partition(b"\n")
        return pyon.decode(line.decode())

    def __do_action(self, action: dict) -> Any:
        self.__send(action)
        reply = self.__recv()
        if reply["status"] == "ok":
            return reply["ret"]
        if reply["status"] == "failed":
            raise_packed_exc(reply["exception"])
        raise ValueError(f"malformed RPC reply status {reply['status']!r}")

    def get_rpc_method_list(self) -> dict:
        """``{"docstring": ..., "methods": {name: (argspec, docstring)}}`` of the target."""
        return self.__do_action({"action": "get_rpc_method_list"})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.__valid_methods:
            raise AttributeError(name)

        def proxy(*args: Any, **kwargs: Any) -> Any:
            return self.__do_action({"action": "call", "name": name, "args": args,
                                     "kwargs": kwargs})
        return proxy


def _annotation_name(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else getattr(
        annotation, "__name__", repr(annotation))


def _document_function(function: Any) -> tuple[dict, str | None]:
    spec = inspect.getfullargspec(function)._asdict()
    spec["annotations"] = {k: _annotation_name(v) for k, v in spec["annotations"].items()}
    return spec, inspect.getdoc(function)


class Server:
    """asyncio TCP server exposing ``targets`` (name -> object, or a factory called per
    connection) to :class:`Client` s.

    :param targets: target name (no whitespace) -> object.
    :param description: optional text sent to clients.
    :param builtin_terminate: offer a ``terminate`` method that ends :meth:`wait_terminate`.
    :param allow_parallel: let coroutine methods of several clients run concurrently.
    """

    def __init__(self, targets: dict[str, Any], description: str | None = None,
                 builtin_terminate: bool = False, allow_parallel: bool = False):
        if any(" " in name for name in targets):
            raise ValueError("target names must not contain whitespace")
        if description is not None and not isinstance(description, str):
            raise ValueError("description must be `None` or `str`")
        self.targets = targets
        self.description = description
        self.builtin_terminate = builtin_terminate
        self._terminate_request: asyncio.Event | None = None
        self._noparallel: asyncio.Lock | None = None
        self._allow_parallel = allow_parallel
        self._client_tasks: set[asyncio.Task] = set()
        self.server: asyncio.AbstractServer | None = None

    async def start(self, host: str | list[str] | None, port: int,
                    ssl_config: Any = None) -> None:
        """Start listening (coroutine); call :meth:`stop` afterwards."""
        if ssl_config is not None:
            raise NotImplementedError("ionlink's sipyco stand-in has no SSL; install sipyco")
        self._terminate_request = asyncio.Event()
        self._noparallel = None if self._allow_parallel else asyncio.Lock()
        self.server = await asyncio.start_server(self._handle_connection, host, port,
                                                 limit=_LINE_LIMIT)

    async def stop(self) -> None:
        """Close every client connection and stop listening (coroutine)."""
        tasks = list(self._client_tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def wait_terminate(self) -> None:
        """Return when a client called the built-in ``terminate``."""
        await self._terminate_request.wait()

    def _handle_connection(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._serve(reader, writer))
        self._client_tasks.add(task)
        task.add_done_callback(self._client_tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handle_connection_cr(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, EOFError):
            logger.debug("client connection lost")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def _handle_connection_cr(self, reader: asyncio.StreamReader,
                                    writer: asyncio.StreamWriter) -> None:
        if await reader.readline() != _INIT_STRING:
            return
        ident = {"targets": sorted(self.targets), "description": self.description,
                 "features": []}
        writer.write((pyon.encode(ident) + "\n").encode())
        line = await reader.readline()
        if not line:
            return
        target_name, *features = line.decode().rstrip("\n").split(" ")
        if features:
            logger.warning("unsupported pc_rpc feature(s) %s", features)
            return
        target = self.targets.get(target_name)
        if target is None:
            return
        if callable(target):          # a factory: one target object per connection
            target = target()
        methods = {name for name, _ in inspect.getmembers(target, callable)}
        if self.builtin_terminate:
            methods.add("terminate")
        writer.write((pyon.encode(methods) + "\n").encode())
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line:
                return
            reply = await self._process_and_pyonize(target, pyon.decode(line.decode()))
            writer.write((reply + "\n").encode())
            await writer.drain()

    async def _process_and_pyonize(self, target: Any, obj: dict) -> str:
        try:
            return pyon.encode({"status": "ok", "ret": await self._process_action(target, obj)})
        except asyncio.CancelledError:
            raise
        except Exception:
            return pyon.encode({"status": "failed", "exception": current_exc_packed()})

    async def _process_action(self, target: Any, obj: dict) -> Any:
        if self._noparallel is not None:
            await self._noparallel.acquire()
        try:
            action = obj.get("action")
            if action == "get_rpc_method_list":
                return self._method_list(target)
            if action == "call":
                name = obj["name"]
                if self.builtin_terminate and name == "terminate":
                    self._terminate_request.set()
                    return None
                if name.startswith("_"):
                    raise AttributeError(f"{name} is not an RPC method")
                ret = getattr(target, name)(*obj["args"], **obj["kwargs"])
                if inspect.iscoroutine(ret):
                    ret = await ret
                return ret
            raise ValueError(f"Unknown action: {action}")
        finally:
            if self._noparallel is not None:
                self._noparallel.release()

    def _method_list(self, target: Any) -> dict:
        doc: dict[str, Any] = {"docstring": inspect.getdoc(target), "methods": {}}
        for name, method in inspect.getmembers(target, callable):
            if not name.startswith("_"):
                doc["methods"][name] = _document_function(method)
        if self.builtin_terminate:
            doc["methods"]["terminate"] = (
                {"args": ["self"], "varargs": None, "varkw": None, "defaults": None,
                 "kwonlyargs": [], "kwonlydefaults": None, "annotations": {}},
                "Terminate the server.")
        return doc


def simple_server_loop(targets: dict[str, Any], host: str | list[str] | None, port: int,
                       description: str | None = None, allow_parallel: bool = False,
                       ssl_config: Any = None, *, loop: asyncio.AbstractEventLoop | None = None
                       ) -> None:
    """Serve ``targets`` until a client calls ``terminate`` or (main thread only) SIGINT or
    SIGTERM arrives. See :class:`Server`."""
    used_loop = loop if loop is not None else asyncio.new_event_loop()
    if loop is None:
        asyncio.set_event_loop(used_loop)
    stop = asyncio.Event()
    handled: list[int] = []
    try:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    used_loop.add_signal_handler(sig, stop.set)
                    handled.append(sig)
                except (NotImplementedError, RuntimeError):
                    pass
        server = Server(targets, description, True, allow_parallel)
        used_loop.run_until_complete(server.start(host, port, ssl_config))
        try:
            async def wait() -> None:
                waits = [asyncio.ensure_future(stop.wait()),
                         asyncio.ensure_future(server.wait_terminate())]
                _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
            used_loop.run_until_complete(wait())
        finally:
            used_loop.run_until_complete(server.stop())
    finally:
        for sig in handled:
            used_loop.remove_signal_handler(sig)
        if loop is None:
            used_loop.close()
