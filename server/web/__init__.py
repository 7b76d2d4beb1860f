"""The web interface for inspectors (issue 15; docs/web.md), served by ``xinfang serve`` at
``/web`` beside the JSON API.

* :func:`create_web_app` — the Starlette app of the pages (mounted by the ledger server);
* :func:`prepare_server_keystore` — a keystore for ``xinfang serve`` holding the log key and
  nothing else, copied from a local keystore; :func:`demo_web_lines` — what the demo's tour
  prints about the web interface (preparing that keystore for the demo ledger).

Templates and static assets (scripts, styles) ship inside this package: the pages load
nothing from outside the server.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .app import PREFIX, Web, create_web_app

#: What a ledger server's keystore holds (docs/operations.md): the log key, its signer state
#: and the two public anchors — no actor's private key.
SERVER_KEY_FILES = ("log.key", "log.state", "log.pub", "admin.pub")


def prepare_server_keystore(keystore: str | Path, target: str | Path) -> Path:
    """Copy the log key, its state and the public anchors from ``keystore`` into ``target``
    (made afresh, mode 0700): a keystore ``xinfang serve`` accepts. A local keystore's state
    that later lags the server's catches up by itself (the log signer replays the stored
    leaves it did not sign)."""
    source, target = Path(keystore), Path(target)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(mode=0o700, parents=True)
    for name in SERVER_KEY_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, target / name)
    return target


from .tour import demo_web_lines  # noqa: E402 - it uses prepare_server_keystore

__all__ = ["PREFIX", "SERVER_KEY_FILES", "Web", "create_web_app", "demo_web_lines",
           "prepare_server_keystore"]
