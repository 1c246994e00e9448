"""Secret config values that keep their text for JSON and the SDK but never show it in a ``repr``."""

from __future__ import annotations

from hodei.masking import MASK


class Redacted(str):
    """A ``str`` whose ``repr`` is ``'***'``.

    Normalised configs travel inside :class:`hodei.Provider`, whose dataclass ``repr`` prints the
    whole config: a log line or traceback that shows a provider must not show its secrets. The
    text itself is unchanged, so JSON, equality and the Docker SDK see the real value.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)

    def __reduce__(self) -> tuple[type[Redacted], tuple[str]]:
        return (Redacted, (str(self),))
