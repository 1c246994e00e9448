"""Commands named in hints and messages, written so that they paste into a shell as they are.

A provider's name may hold spaces, quotes or ``$`` (``Lambda us-east-1``): every hint that names a
command with an argument builds it here, so each argument is quoted the way a POSIX shell reads it back.
"""

from __future__ import annotations

import shlex


def command(*words: str) -> str:
    """``hodei WORDS...`` in backticks, each word quoted for a shell when it needs it:
    ``command("providers", "show", "Lambda us-east-1")`` is ``\\`hodei providers show 'Lambda us-east-1'\\```."""
    return f"`{shlex.join(('hodei', *words))}`"
