"""``hodei --server ADDRESS``: which commands go through the daemon's API. Every other command is refused
(exit 2) when --server (or HODEI_SERVER) is given: none of them ever runs on this machine's database or
files instead of the daemon's."""

from __future__ import annotations

from hodei.hints import command

# Commands with an API call (the commands themselves ask ``App.providers``, ``App.selection``, ...,
# which answer through it).
REMOTE = {
    ("providers", "list"), ("providers", "show"), ("providers", "add"), ("providers", "update"),
    ("providers", "delete"), ("providers", "enable"), ("providers", "disable"), ("providers", "maintenance"),
    ("providers", "history"), ("providers", "apply"), ("providers", "check"), ("providers", "reset-cooldown"),
    ("select",), ("explain",),
    ("workers", "provision"), ("workers", "release"), ("workers", "list"), ("workers", "show"),
    ("workers", "cancel"), ("queue",), ("daemons",),
}

# Why a command has no API call, by its first word.
_WHY = {
    "db": "it creates and migrates the database itself: run it where the database is reachable",
    "config": "it reads and writes hodei.toml on this machine",
    "serve": "it is the daemon",
    "plugins": "it lists the plugins installed on this machine, not the daemon's",
    "plugin": "it writes a plugin package on this machine",
}


def refusal(path: tuple[str, ...]) -> str:
    """Why ``hodei PATH`` cannot run with --server, and what to do instead."""
    why = _WHY.get(path[0] if path else "", "it works on this machine's database or files")
    return (f"{command(*path)} has no API call, so it does not run with --server ({why}); "
            f"run it without --server and without HODEI_SERVER")
