"""Showing a wait's link in a terminal (a URL to open, or a QR code to scan),
and any text from a server without what a terminal would act on.

A run that waits may carry a link (:attr:`~mfaflow.InputRequest.link`): a
web page to open, or an ``otpauth://`` URI to add to an authenticator app.
The URI holds the TOTP secret, so terminals get it as a QR code, which a
phone reads and a scrollback or a log does not.
"""

from __future__ import annotations

import unicodedata
from typing import TextIO

import segno

__all__ = ["draw_qr", "is_otpauth", "terminal_text"]

#: Unicode categories a terminal must not get as they are: controls (an
#: escape sequence can rewrite the screen), formats (a right-to-left
#: override reorders a line), lone surrogates (which no output encoding
#: takes), private and unassigned code points, line and paragraph breaks.
_ESCAPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

#: The characters of a compact QR code: two rows of modules to a line.
_HALF_BLOCKS = "\u2580\u2584\u2588"


def is_otpauth(link: str) -> bool:
    """Whether ``link`` is an ``otpauth://`` URI, for an authenticator app."""
    return link[:8].lower() == "otpauth:"


def draw_qr(text: str, out: TextIO) -> None:
    """Draw ``text`` as a QR code on ``out``.

    Half blocks where ``out`` can encode them; ANSI colours otherwise.
    """
    code = segno.make(text)
    encoding = getattr(out, "encoding", None) or "utf-8"
    try:
        _HALF_BLOCKS.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        code.terminal(out=out)
    else:
        code.terminal(out=out, compact=True)
    out.flush()


def terminal_text(text: str) -> str:
    """``text`` with each character a terminal would act on written as an escape.

    What a server sends (an error description, a value saved from an
    answer) may hold an escape sequence, a line break that forges a line of
    output, or a lone surrogate that would stop the output with an
    encoding error: each such character is shown as ``\\x1b``, ``\\n``,
    ``\\ud800``, ... instead, and the rest is left as it is.
    """
    if text.isprintable():
        return text
    return "".join(
        _escape(char) if unicodedata.category(char) in _ESCAPED else char
        for char in text
    )


def _escape(char: str) -> str:
    code = ord(char)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if char in named:
        return named[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
