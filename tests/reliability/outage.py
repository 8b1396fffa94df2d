"""Outages for tests (issue 21) without disturbing the machine's shared servers.

`TcpProxy` sits between a client and a real PostgreSQL or Redis: `down()` closes every open
connection and refuses new ones (what a client sees when the server stops), `up()` lets them
through again. `hang()` accepts connections but never answers (a server that is frozen).
`through_proxy` points this process's database connections at a proxy. The heavy restart
scenarios (a real PostgreSQL stopped and killed -9) use a private server instead
(tests/reliability/test_restarts.py).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from django.db import connection, connections


class TcpProxy:
    """A TCP listener on 127.0.0.1 in front of `target_host:target_port`, or of a Unix socket
    when `target_host` is a path (the embedded stack's servers listen on sockets only)."""

    def __init__(self, target_host: str, target_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.hanging = False
        self.up()

    # --- control -----------------------------------------------------------------------------
    def up(self) -> None:
        self.hanging = False
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections, cut the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self._cut()

    def hang(self) -> None:
        """Accept connections but answer nothing (a frozen server)."""
        self.up()
        self._cut()
        self.hanging = True

    def close(self) -> None:
        self.down()

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- plumbing ----------------------------------------------------------------------------
    def _cut(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, set()
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._listener is not listener:
                client.close()
                return
            with self._lock:
                self._conns.add(client)
            if self.hanging:
                continue  # held open, never answered
            try:
                server = self._connect()
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.add(server)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _connect(self) -> socket.socket:
        host, port = self.target
        if not host.startswith("/"):
            return socket.create_connection(self.target, timeout=5)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.settimeout(5)
        try:
            server.connect(host)
        except OSError:
            server.close()
            raise
        return server

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def database_proxy() -> TcpProxy:
    """A TcpProxy in front of the test database (TCP, or the socket of the embedded PostgreSQL
    `make test` starts on a machine without one)."""
    settings_dict = connection.settings_dict
    host, port = settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432)
    if host.startswith("/"):  # a socket directory
        host = f"{host}/.s.PGSQL.{port}"
    return TcpProxy(host, port)


@contextlib.contextmanager
def through_proxy():
    """This process's database connections go through a TcpProxy (yielded) for the block.

    The settings dict is shared by every thread's connection of the alias, so worker threads
    and probe threads of this process follow too."""
    settings_dict = connection.settings_dict
    saved = settings_dict["HOST"], settings_dict["PORT"]
    proxy = database_proxy()
    connections.close_all()
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", proxy.port
    try:
        yield proxy
    finally:
        proxy.up()
        connections.close_all()
        settings_dict["HOST"], settings_dict["PORT"] = saved
        proxy.close()


def timed(fn):
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started
