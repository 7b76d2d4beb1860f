"""HTTP services of xinfang-ledger (Starlette ASGI apps served by uvicorn).

The public API of this package, for the CLI's ``serve`` commands:

* ``Witness``, ``LogKey``, ``create_app`` — the C2SP tlog-witness (docs/witness.md).

The ledger server and its web interface will join them here.
"""

from server.witness import LogKey, Witness, create_app

__all__ = ["LogKey", "Witness", "create_app"]
