"""Showing the link of a wait in a terminal: a URL to open, or a QR code to scan.

A run that waits may carry a link (:attr:`~mfaflow.InputRequest.link`): a
web page to open, or an ``otpauth://`` URI to add to an authenticator app.
The URI holds the TOTP secret, so terminals get it as a QR code, which a
phone reads and a scrollback or a log does not.
"""

from __future__ import annotations

from typing import TextIO

import segno

__all__ = ["draw_qr", "is_otpauth"]

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
