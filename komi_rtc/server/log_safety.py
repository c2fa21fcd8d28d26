"""The log says what clients sent without letting them write it or leak it: control
characters in a logged value are escaped (a `%0a` in a URL cannot forge a line), aiohttp's
traceback for a request it could not even parse (a 100 kB URL) becomes one line, and no
secret a client sent reaches a line: aiohttp quotes the raw request line or header line it
refused (`GET /cameras?token=... HTTP/1.2`), and its access log (--debug) every URL."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote

from aiohttp.http_exceptions import HttpProcessingError

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
REDACTED = "<redacted>"
# What carries a token, wherever it appears in a line (a query, a quoted header, JSON):
# `token=` in a query (access_token= too), an Authorization header's value (up to the end
# of the line or the quote aiohttp puts around it), a Bearer credential (its space may be a
# tab, written `\t` in a quoted line, or `%20` in a URL), a JSON "token" field, and a JWT
# (our tokens: a header `{"` is `eyJ` in base64).
_SECRETS = re.compile(
    r"(?i)(token=)[^&\s'\"#;]*"
    r"|(authorization\s*[:=]\s*)[^\r\n'\"]*"
    r"|(\bbearer(?:\s|\\t|\\x09|%20|\+)+)[^\s'\",;&]+"
    r"|(\"token\"\s*:\s*\")[^\"]*"
    r"|\beyJ[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*){0,2}"
)


def escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _redact_match(match: re.Match[str]) -> str:
    """The secret's label stays (`token=`), the secret goes."""
    return next((label for label in match.groups() if label), "") + REDACTED


class SafeLogFilter(logging.Filter):
    """Installed on the handlers, so it covers every logger, ours and the libraries'."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def keep_secret(self, secret: str) -> None:
        """A secret (the admin token) that is never logged, wherever it appears: as it is
        and as it looks percent-encoded in a URL."""
        if secret:
            self._secrets.update({secret, quote(secret, safe="")})

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _SECRETS.sub(_redact_match, text)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ConnectionResetError) and record.name.startswith("aiohttp"):
            record.msg, record.args = "a client closed its connection mid-request", None
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        if isinstance(exc, HttpProcessingError) and record.name.startswith("aiohttp"):
            # a request aiohttp could not parse: the client's fault, not a server bug; its
            # message quotes the raw line, redacted before it is cut (a cut token is a
            # token no pattern recognises)
            record.msg = "unparseable HTTP request refused with %d: %s"
            record.args = (exc.code, self.redact(str(exc.message))[:200])
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        if record.exc_info and not record.exc_text:
            # a traceback quotes exception messages, which may quote what a client sent
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        message = record.getMessage()
        safe = escape_controls(self.redact(message))
        if safe != message:
            record.msg, record.args = safe, None
        return True


def install(handlers: list[logging.Handler], secrets: Iterable[str] = ()) -> None:
    """Filter every record these handlers write; `secrets` (the admin token) are added to
    the filter already installed, so this is called again once they are known."""
    for handler in handlers:
        found = next((f for f in handler.filters if isinstance(f, SafeLogFilter)), None)
        if found is None:
            found = SafeLogFilter()
            handler.addFilter(found)
        for secret in secrets:
            found.keep_secret(secret)
