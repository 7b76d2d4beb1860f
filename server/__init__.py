"""HTTP services of xinfang-ledger (Starlette ASGI apps served by uvicorn).

The public API of this package, for the CLI's ``serve`` commands:

* ``Witness``, ``LogKey``, ``create_app`` — the C2SP tlog-witness (docs/witness.md);
* ``run_in_background``, ``BackgroundServer``, ``listen_socket`` — serving an app from a
  thread of this process (the demo's witnesses);
* ``LedgerServer``, ``create_ledger_app`` — the ledger server (``xinfang serve``,
  docs/api.md), reads authorized by ``server.access``.

* ``create_web_app``, ``prepare_server_keystore``, ``demo_web_lines`` — the web interface
  (``/web``, docs/web.md), a server keystore made from a local one, the demo tour's lines.
"""

from server.background import BackgroundServer, listen_socket, run_in_background
from server.ledger_server import LedgerServer, create_ledger_app
from server.web import create_web_app, demo_web_lines, prepare_server_keystore
from server.witness import LogKey, Witness, create_app

__all__ = ["BackgroundServer", "LedgerServer", "LogKey", "Witness", "create_app",
           "create_ledger_app", "create_web_app", "demo_web_lines", "listen_socket",
           "prepare_server_keystore", "run_in_background"]
