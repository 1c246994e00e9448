"""The SQL side of Hodei: rows in and out of the tables, with the locks a read-modify-write needs.

Nothing here knows plugins: validation and masking live in :mod:`hodei.store` and
:mod:`hodei.masking`, which read rows through these modules.
"""
