"""JSON for krun's start: the json package's C scanner and encoder, without the package.

``import json`` costs krun ~7 ms of its ~25 on every ``create`` and ``exec``, nearly
all of it the regular expressions json.decoder and json.encoder compile at import
(``re`` itself, enum, functools).  Their C accelerator, ``_json``, needs none of them:
this module drives it directly, with json's own defaults (``json.loads``: NaN and
Infinity accepted, numbers as int and float; ``json.dumps``: ASCII, ``", "`` and
``": "``), so the text is the same byte for byte.  Anything unusual (text that is not
valid JSON, an object ``_json`` cannot encode, a Python without ``_json``) goes to the
json package, so its errors and messages are json's own.
"""

from __future__ import annotations

_json = None  # the C module, once made ready; False when it is not there


class _Context:
    """What ``_json.make_scanner`` reads from a JSONDecoder: json.loads' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # (NaN, Infinity, -Infinity, as json.loads gives them)
    memo: dict = {}


_WHITESPACE = " \t\n\r"
_scanner = _encoder = None


def _ready() -> bool:
    global _json, _scanner, _encoder
    if _json is None:
        try:
            import _json as c

            _scanner = c.make_scanner(_Context())
            # (markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan)
            _encoder = c.make_encoder(None, _default, c.encode_basestring_ascii, None, ": ", ", ", False, False, True)
            _json = c
        except (ImportError, AttributeError, TypeError):
            _json = False
    return bool(_json)


def _default(o: object) -> object:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def loads(text: str | bytes) -> object:
    """json.loads(text)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if _ready():
        start = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = _scanner(text, start)
        except (StopIteration, ValueError, RecursionError):
            value, end = None, -1
        if end >= 0 and not text[end:].strip(_WHITESPACE):
            return value
    import json  # (the error, in json's words)

    return json.loads(text)


def load(f) -> object:
    """json.load(f)."""
    return loads(f.read())


def dumps(value: object) -> str:
    """json.dumps(value)."""
    if _ready() and isinstance(value, (dict, list)):
        try:
            return "".join(_encoder(value, 0))
        except (TypeError, ValueError, RecursionError):
            pass
    import json

    return json.dumps(value)
