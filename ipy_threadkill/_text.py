"""Text that comes from threads, made safe to print on one line.

Thread names, locations, states and the messages that quote them are data from
other code: a name may hold a newline (a fake table row), an escape sequence
(clearing the terminal) or a bidirectional override (showing its text
reversed). Every view prints such text through one_line() or clip(), which
replace each character str.isprintable() rejects (control characters, line and
paragraph separators, bidi controls, non-space whitespace) by its escape, as
repr() writes it: "\\n", "\\x1b", "\\u202e". Nothing here imports IPython.
"""

__all__ = ["one_line", "clip"]

_ELLIPSIS = "…"


def _shown(ch):
    """How one character is shown: itself, or its escape."""
    return ch if ch.isprintable() else repr(ch)[1:-1]


def one_line(value):
    """`value` as text holding only printable characters: one line, no escapes."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(_shown(ch) for ch in text)


def clip(value, width, keep_end=False):
    """one_line(value), cut to at most `width` characters with an ellipsis (at
    the start when `keep_end`, e.g. for a path). An escape is kept whole or cut
    whole: a clipped "\\x1b" never becomes a misleading "\\x"."""
    text = str(value)
    if text.isprintable():
        if len(text) <= width:
            return text
        units = text
    else:
        units = [_shown(ch) for ch in text]
        if sum(map(len, units)) <= width:
            return "".join(units)
    room, kept = width - len(_ELLIPSIS), []
    for unit in (reversed(units) if keep_end else units):
        if len(unit) > room:
            break
        kept.append(unit)
        room -= len(unit)
    if keep_end:
        return _ELLIPSIS + "".join(reversed(kept))
    return "".join(kept) + _ELLIPSIS
