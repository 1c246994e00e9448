"""A worker row edited in SQL into something that cannot be read (``created_at = 'infinity'`` on
PostgreSQL, text on SQLite) still holds its slot by its state: it must be listed (saying what cannot
be read), released (freeing the slot) and expired like any other, never left holding capacity unseen."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from hodei import database
from hodei.workers import WorkerRecords


def unreadable_time(hodei: Any) -> str:
    return "'infinity'" if hodei.is_postgres else "'whenever'"


def test_an_unreadable_worker_is_listed_released_and_frees_its_slot(hodei: Any) -> None:
    hodei.ok("providers", "add", "p", "--type", "static", "--max-workers", "1")
    worker = hodei.json("workers", "provision", "-r", "-", input="{}")
    hodei.sql(f"UPDATE workers SET created_at = {unreadable_time(hodei)} WHERE id = :id", id=worker["id"])
    assert hodei("workers", "provision", "-r", "-", input="{}").exit_code != 0  # its slot is held

    listed = {w["id"]: w for w in hodei.json("workers", "list", "--all")}
    assert worker["id"] in listed
    assert listed[worker["id"]]["state"] == "RUNNING"
    assert "cannot be read" in listed[worker["id"]]["reason"] and "created_at" in listed[worker["id"]]["reason"]
    table = hodei.ok("workers", "list").stdout
    assert worker["id"] in table and "cannot be read" in table

    released = hodei.json("workers", "release", worker["id"])
    assert released["state"] == "TERMINATED"
    again = hodei.json("workers", "provision", "-r", "-", input="{}")  # the slot is free
    assert again["state"] == "RUNNING"


def test_a_reservation_whose_time_cannot_be_read_expires(hodei: Any) -> None:
    hodei.ok("providers", "add", "p", "--type", "static")
    provider = hodei.provider("p")
    engine = database.create_engine(hodei.url)
    try:
        records = WorkerRecords(engine)
        reserved = records.reserve(uuid.UUID(provider["id"]), worker_id="w-1", token="t", requirements={})
        hodei.sql(f"UPDATE workers SET updated_at = {unreadable_time(hodei)}, "
                  f"created_at = {unreadable_time(hodei)} WHERE id = 'w-1'")
        assert [w.id for w in records.stale_reservations(timedelta(hours=1))] == [reserved.id]
    finally:
        engine.dispose()
