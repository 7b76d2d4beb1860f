"""What the demo's tour prints about the web interface (``xinfang demo``), and the server
keystore it prepares for it: ``xinfang serve`` refuses a keystore holding actors' keys, so the
demo's own keystore (every demo person's key) cannot be the server's."""

from __future__ import annotations

import shlex
from pathlib import Path

from . import prepare_server_keystore

PORT = 8400


def demo_web_lines(root: str | Path, ledger_url: str, program: str, lang: str) -> list[str]:
    """Prepare ``ROOT/server-keys`` (the log key only) and say how to serve the demo ledger
    and open it in a browser with a demo person's key."""
    root = Path(root)
    keys = prepare_server_keystore(root / "keys", root / "server-keys")
    q = shlex.quote
    serve = (f"  {program} serve --ledger {q(ledger_url)} --keystore {q(str(keys))} "
             f"--listen 127.0.0.1:{PORT}")
    inspector, officer = root / "keys" / "inspector-01.key", root / "keys" / "officer-04.key"
    if lang == "zh":
        return ["网页界面（服务器的密钥库只放日志密钥，已准备在 "
                f"{keys}）：", serve,
                f"  然后用浏览器打开 http://127.0.0.1:{PORT}/web/ ，"
                f"在“登记本机密钥”页“载入密钥文件”选 {inspector}（督察，可看全部案件）"
                f"或 {officer}（承办人，只看本单位案件），再登录。"]
    return [f"The web interface (the server's keystore holds the log key only, prepared in "
            f"{keys}):", serve,
            f"  then open http://127.0.0.1:{PORT}/web/ in a browser; on \"Enrol a key\", \"Load a "
            f"key file\" {inspector} (an inspector: every case) or {officer} (a handler: their "
            "unit's cases only), and sign in."]


__all__ = ["PORT", "demo_web_lines"]
