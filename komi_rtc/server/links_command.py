"""`komi-rtc links`: fresh monitor and camera links for a server already running, minted
through its own POST /tokens with the admin token."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Mapping

from .access import load_admin_token
from .effective_config import parse_args
from .tls import lan_addresses, terminal_qr


def print_links(argv: list[str], environ: Mapping[str, str] | None = None) -> int:
    """`komi-rtc links [options]`: fresh monitor and camera links (and the camera link's QR
    code) from a running server, minted with the admin token through its POST /tokens, so
    the server lists and can revoke them."""
    import json
    import urllib.error
    import urllib.request

    config = parse_args(argv, environ)
    authority = None
    if not config.open_access:
        token = load_admin_token(config.admin_token, config.admin_token_file, config.state_dir)
        authority = token
    scheme = "https" if config.https else "http"
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    base = f"{scheme}://{host}:{config.port}"
    links = {}
    for role in ("monitor", "camera"):
        if authority is None:
            links[role] = ""
            continue
        body = json.dumps({"role": role, "ttl_s": config.link_ttl_s}).encode()
        request = urllib.request.Request(
            f"{base}/tokens",
            data=body,
            headers={"Authorization": f"Bearer {authority}", "Content-Type": "application/json"},
        )
        try:
            context = ssl._create_unverified_context() if config.https else None  # our own cert
            with urllib.request.urlopen(request, timeout=10, context=context) as response:
                links[role] = "?token=" + json.loads(response.read())["token"]
        except urllib.error.HTTPError as exc:
            print(f"komi-rtc links: the server at {base} refused: {exc.code}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"komi-rtc links: no server answers at {base} ({exc})", file=sys.stderr)
            return 2
    # the address people open: the node's public URL, else (listening on every address) the
    # LAN one, else the one it listens on
    lan = lan_addresses() if config.host in ("0.0.0.0", "::", "") else []
    shown = config.public_url or (f"{scheme}://{lan[0]}:{config.port}" if lan else base)
    print(f"monitor: {shown}/monitor{links['monitor']}")
    print(f"camera:  {shown}/camera{links['camera']}")
    print(terminal_qr(f"{shown}/camera{links['camera']}"))
    return 0
