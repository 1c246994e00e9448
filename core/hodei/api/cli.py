"""``hodei --server ADDRESS``: which commands go through the daemon's API (the commands themselves ask
``App.store``, ``App.selection`` or the workers client, which answer through it)."""

from __future__ import annotations

from hodei.hints import command

# Commands with an API call. The others (db, config, serve, plugins, providers check, ...)
# work on the database (or the machine) directly, and say so when --server is given.
REMOTE = {
    ("providers", "list"), ("providers", "show"), ("providers", "add"), ("providers", "update"),
    ("providers", "delete"), ("providers", "enable"), ("providers", "disable"), ("providers", "maintenance"),
    ("providers", "history"), ("providers", "apply"), ("select",), ("explain",),
    ("workers", "provision"), ("workers", "release"), ("workers", "list"), ("workers", "show"),
    ("workers", "cancel"), ("queue",), ("daemons",),
}
_GROUPS = {"providers", "workers"}


def command_path(args: list[str]) -> tuple[str, ...]:
    """The command an argument list names (``providers check``), from the root's remaining arguments."""
    words = [a for a in args if not a.startswith("-")]
    if not words:
        return ()
    return tuple(words[:2]) if words[0] in _GROUPS and len(words) > 1 else (words[0],)


def goes_remote(path: tuple[str, ...]) -> bool | None:
    """True: through the API; False: on the database directly; None: a group's help, no matter."""
    if path in REMOTE:
        return True
    if path and path[0] in _GROUPS and len(path) == 1:
        return None
    return False if path else None


def direct_note(path: tuple[str, ...]) -> str:
    return (f"hodei: note: {command(*path)} has no API call: it works on the database directly "
            "(--database-url or hodei.toml's [database]), not through --server")
