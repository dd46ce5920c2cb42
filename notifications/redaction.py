"""Keeping channel URLs (they hold the services' tokens) out of logs and stored error messages.

Apprise logs what it does, and at DEBUG level (and in some errors) that includes the URL it posts to
or the token it was given; urllib3 logs the request line, whose path carries e.g. a Telegram bot token.
Two defences, both applied to every record of those loggers before any handler sees it:

- every fragment of every channel URL this process has decrypted (the URL itself, its user, password,
  host, path segments and query values of at least ``MIN_FRAGMENT`` characters) is replaced by ``***``;
- in Apprise's own records, anything shaped like a URL is cut to its scheme (``tgram://…``).

``redact`` is also applied to the failure reasons stored on a delivery.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from urllib.parse import unquote

__all__ = ["install", "redact", "remember", "scheme_of"]

MIN_FRAGMENT = 6
MAX_REMEMBERED = 5000
MASK = "***"
# The loggers whose records can carry a channel URL or one of its tokens.
LOGGERS = ("apprise", "urllib3.connectionpool", "urllib3.util.retry", "requests")

_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]{0,31})://")
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{0,31})://[^\s'\"<>]+")
_SEPARATORS = re.compile(r"[/:@?&=#,;+\s]+")

_lock = threading.Lock()
_fragments: OrderedDict[str, None] = OrderedDict()
_pattern: re.Pattern[str] | None = None


def scheme_of(url: str) -> str:
    """The lower-cased scheme of ``url`` ("" when it has none)."""
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else ""


def _pieces(url: str) -> set[str]:
    pieces = {url.strip()}
    rest = _SCHEME.sub("", url.strip())
    for text in (rest, unquote(rest)):
        pieces.add(text)
        pieces.update(_SEPARATORS.split(text))
    return {piece for piece in pieces if len(piece) >= MIN_FRAGMENT}


def remember(url: str) -> None:
    """Redact ``url`` and its fragments from now on, in this process."""
    global _pattern
    with _lock:
        before = len(_fragments)
        for piece in _pieces(url):
            _fragments[piece] = None
            _fragments.move_to_end(piece)
        while len(_fragments) > MAX_REMEMBERED:
            _fragments.popitem(last=False)
        if len(_fragments) != before or _pattern is None:
            ordered = sorted(_fragments, key=len, reverse=True)  # the longest first, so a URL goes whole
            _pattern = re.compile("|".join(re.escape(piece) for piece in ordered)) if ordered else None


def redact(text: str, *, urls: bool = True) -> str:
    """``text`` without any remembered fragment (and, with ``urls``, any URL cut to its scheme)."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if urls:
        text = _URL.sub(lambda match: f"{match.group(1)}://…", text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message without secrets; never drops a record."""

    def __init__(self, *, urls: bool) -> None:
        super().__init__()
        self.urls = urls

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        cleaned = redact(message, urls=self.urls)
        if record.exc_info and record.exc_info[1] is not None:
            # The traceback text would be formatted from the exception later, secrets and all.
            cleaned += f" ({type(record.exc_info[1]).__name__}: {redact(str(record.exc_info[1]))})"
            record.exc_info = None
            record.exc_text = None
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def install() -> None:
    """Attach the filter to the loggers that may carry a channel URL (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets(urls=name == "apprise"))
