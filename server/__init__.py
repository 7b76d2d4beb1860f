"""HTTP services of xinfang-ledger (Starlette ASGI apps served by uvicorn).

The public API of this package, for the CLI's ``serve`` commands:

* ``Witness``, ``LogKey``, ``create_app`` — the C2SP tlog-witness (docs/witness.md);
* ``run_in_background``, ``BackgroundServer``, ``listen_socket`` — serving an app from a
  thread of this process (the demo's witnesses).

The ledger server and its web interface will join them here.
"""

from server.background import BackgroundServer, listen_socket, run_in_background
from server.witness import LogKey, Witness, create_app

__all__ = ["BackgroundServer", "LogKey", "Witness", "create_app", "listen_socket",
           "run_in_background"]
