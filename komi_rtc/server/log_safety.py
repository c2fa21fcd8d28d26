"""The log says what clients sent without letting them write it: control characters in a
logged value are escaped (a `%0a` in a URL cannot forge a line), and aiohttp's traceback
for a request it could not even parse (a 100 kB URL) becomes one line."""

from __future__ import annotations

import logging
import re

from aiohttp.http_exceptions import HttpProcessingError

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class SafeLogFilter(logging.Filter):
    """Installed on the handlers, so it covers every logger, ours and the libraries'."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ConnectionResetError) and record.name.startswith("aiohttp"):
            record.msg, record.args = "a client closed its connection mid-request", None
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        if isinstance(exc, HttpProcessingError) and record.name.startswith("aiohttp"):
            # a request aiohttp could not parse: the client's fault, not a server bug
            record.msg = "unparseable HTTP request refused with %d: %s"
            record.args = (exc.code, str(exc.message)[:200])
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        message = record.getMessage()
        escaped = escape_controls(message)
        if escaped != message:
            record.msg, record.args = escaped, None
        return True


def install(handlers: list[logging.Handler]) -> None:
    for handler in handlers:
        if not any(isinstance(f, SafeLogFilter) for f in handler.filters):
            handler.addFilter(SafeLogFilter())
