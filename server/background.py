"""Serving an ASGI app from a background thread of this process (the demo's witnesses).

``xinfang … serve`` commands run uvicorn in the foreground; :func:`run_in_background` runs the
same server in a daemon thread on an already bound socket, so that the caller knows the port
(``port=0``: any free one) before the first request and the server stops with the ``with``
block -- or, at the latest, with the process, whatever happens in between.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

from ledger import EnvironmentProblem

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 when the host has a colon); connections
    wait in its backlog until the server serves them. EnvironmentProblem when it cannot bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that name it, and
    # without it every answer waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise EnvironmentProblem(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                                 ) from None
    return sock


class BackgroundServer:
    """One uvicorn server in a daemon thread; a context manager that stops it on exit."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.sock = listen_socket(host, port)
        self.port: int = self.sock.getsockname()[1]
        where = f"[{host}]" if ":" in host else host
        self.url = f"http://{where}:{self.port}"
        # log_config=None: leave the process's logging configuration alone
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name=f"uvicorn {self.url}",
                                       daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self.error = exc

    def start(self) -> BackgroundServer:
        """Start serving; returns once the server accepts requests (EnvironmentProblem if it
        does not within START_TIMEOUT seconds)."""
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise EnvironmentProblem(f"the server on {self.url} did not start"
                                         + (f": {self.error}" if self.error else ""))
            time.sleep(0.005)
        return self

    def request_stop(self) -> None:
        """Ask the server to exit without waiting (stopping several at once is faster: each
        notices within uvicorn's 0.1 s tick)."""
        self.server.should_exit = True

    def stop(self) -> None:
        """Ask the server to exit, wait for it, and close the socket (idempotent)."""
        self.request_stop()
        if self.thread.is_alive():
            self.thread.join(STOP_TIMEOUT)
        if self.thread.is_alive():   # connections that do not close: stop waiting for them
            self.server.force_exit = True
            self.thread.join(STOP_TIMEOUT)
        self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def run_in_background(app: Any, host: str = "127.0.0.1", port: int = 0) -> BackgroundServer:
    """Serve ``app`` on ``host:port`` from a daemon thread, started; use it in a ``with``
    block (or call ``stop()``)."""
    return BackgroundServer(app, host, port).start()


__all__ = ["BackgroundServer", "listen_socket", "run_in_background"]
