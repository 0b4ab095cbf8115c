"""Text made safe for a terminal: control characters and bidirectional overrides shown as escapes.

A title, id or value printed raw could drive the terminal: ESC sequences set the window
title or clear the screen, a carriage return or backspace overwrites what was printed,
BEL rings, and the bidirectional overrides (U+202A-U+202E, U+2066-U+2069) reorder how the
rest of a line reads. Every control character (C0, DEL, C1) and these overrides are shown
as escapes (``\\x1b``, ``\\r``, ``\\u009b``, ``\\u202e``); a newline is kept only where a message
has several lines. Everything else, Hangul included, is printed as it is.
"""

from __future__ import annotations

import unicodedata

#: Invisible characters that reorder the text around them (the "Trojan Source" set)
BIDI_CONTROLS = frozenset({*range(0x202A, 0x202F), *range(0x2066, 0x206A)})
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(code: int) -> str:
    char = chr(code)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}")


_CONTROLS = [code for code in range(0xA0) if unicodedata.category(chr(code)) == "Cc"]
_ONE_LINE = {code: _escape(code) for code in (*_CONTROLS, *BIDI_CONTROLS)}
_LINES = {code: escape for code, escape in _ONE_LINE.items() if code != ord("\n")}
#: For JSON text: what ``json.dumps`` leaves raw (C0 it escapes itself), as JSON escapes of the same characters
_JSON = {code: f"\\u{code:04x}" for code in (*_CONTROLS, *BIDI_CONTROLS) if code >= 0x7F}


def safe(text: object, multiline: bool = False) -> str:
    """``str(text)`` with every control character and bidirectional override escaped.

    ``multiline`` keeps newlines (a message of several lines); otherwise they are escaped too.
    Escaping twice changes nothing.
    """
    return str(text).translate(_LINES if multiline else _ONE_LINE)


def safe_json(text: str) -> str:
    """JSON text (from ``json.dumps``) with DEL, C1 and bidirectional overrides as ``\\uXXXX`` escapes.

    The JSON means the same: these characters can only occur inside strings, where the
    escape stands for the character itself.
    """
    return text.translate(_JSON)
