"""Close matches for a misspelt name, so that an error message can suggest the right one.

`difflib` alone misses the commonest slip, a name cut short (``mbb`` for ``mbb_beam``: its
similarity ratio is 0.55, under difflib's usual cutoff of 0.6), so names that start with the
given word are offered first.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_names(word: object, known: Iterable[str], n: int = 3) -> list[str]:
    """At most `n` names of `known` that `word` was probably meant to be, best first.

    Order: a match that differs only in letter case, then the names that start with `word`
    (case-insensitive, for words of two characters or more), then difflib's close matches
    (ratio ≥ 0.6).
    """
    word, known = str(word), list(known)
    folded = word.casefold()
    found = [name for name in known if name.casefold() == folded]
    if len(folded) >= 2:
        found += [name for name in known if name.casefold().startswith(folded)]
    found += difflib.get_close_matches(word, known, n=n, cutoff=0.6)
    return list(dict.fromkeys(name for name in found if name != word))[:n]


def did_you_mean(word: object, known: Iterable[str], n: int = 3) -> str:
    """``"did you mean 'a' or 'b'?"`` for the close names of `word`, or ``""`` if there are none."""
    close = close_names(word, known, n)
    return f"did you mean {' or '.join(map(repr, close))}?" if close else ""
