"""Property tests: whatever document arrives, it is either stored exactly or refused with a named
field, and a refused document never writes anything."""

from __future__ import annotations

import pytest
from hodei.errors import AlreadyExists, InvalidInput
from hodei.provider_spec import PROVIDER_FIELDS
from hodei.store import Store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)

VALID = {"name": "p", "provider_type": "static", "config": {"type": "static"}, "priority": 5, "max_workers": 3,
         "preferred_region": "eu-west-1", "allowed_regions": ["eu-west-1"], "required_labels": {"env": "prod"},
         "annotations": {"tier": "gold"}}

# Each corruption is certainly invalid: (field it breaks, strategy for the bad value).
corruptions = st.one_of(
    st.tuples(st.just("max_workers"), st.one_of(st.integers(max_value=0), st.floats(), st.text(), st.booleans())),
    st.tuples(st.just("priority"), st.one_of(st.floats(), st.text(), st.booleans(), st.none())),
    st.tuples(st.just("status"), st.text().filter(lambda s: s not in ("ACTIVE", "DISABLED", "MAINTENANCE",
                                                                      "UNHEALTHY"))),
    st.tuples(st.just("preferred_region"), st.sampled_from(["", " ", " eu", "eu ", 3, [], {}])),
    st.tuples(st.just("allowed_regions"), st.one_of(st.just([""]), st.text(min_size=1),
                                                    st.lists(st.integers(), min_size=1))),
    st.tuples(st.just("required_labels"), st.one_of(st.lists(st.text()), st.integers(),
                                                    st.dictionaries(st.text(min_size=1), st.integers(), min_size=1))),
    st.tuples(st.just("annotations"), st.dictionaries(st.just(""), st.text(), min_size=1)),
    # PostgreSQL cannot store U+0000 in text or jsonb: refused on every backend alike.
    st.tuples(st.just("annotations"), st.dictionaries(st.just("k"), st.just("a\x00b"), min_size=1)),
    st.tuples(st.just("config"), st.just({"health_reason": "\x00"})),
    st.tuples(st.just("annotations"), st.just({"k": "\ud800"})),
    st.tuples(st.just("config"), st.one_of(st.lists(json_values), st.integers(), st.text(),
                                           st.dictionaries(st.sampled_from(["nope", "xyz", "Type"]), json_values,
                                                           min_size=1))),
    st.tuples(st.just("provider_type"), st.one_of(st.text().filter(lambda s: s != "static"), st.integers())),
    st.tuples(st.just("name"), st.sampled_from(["", " ", " p", "p ", 7, None, "x" * 201])),
    st.tuples(st.text(min_size=1).filter(lambda k: k not in PROVIDER_FIELDS and k != "id"), json_values),
)


def state(store: Store):
    return [(p.id, p.document(), p.updated_at) for p in store.all()]


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY_SETTINGS
@given(broken=st.lists(corruptions, min_size=1, max_size=3))
def test_malformed_documents_are_refused_and_write_nothing(hodei_store: Store, broken) -> None:
    before = state(hodei_store)
    document = dict(VALID)
    for key, value in broken:
        document[key] = value
    with pytest.raises(InvalidInput) as info:
        hodei_store.create(document)
    assert all(p.field or p.reason for p in info.value.problems)
    with pytest.raises(InvalidInput):
        hodei_store.apply([VALID | {"name": "other"}, document])
    assert state(hodei_store) == before


@PROPERTY_SETTINGS
@given(document=st.one_of(json_values, st.dictionaries(st.sampled_from([*PROVIDER_FIELDS, "x"]), json_values)))
def test_any_document_is_stored_exactly_or_refused_cleanly(hodei_store: Store, document) -> None:
    before = state(hodei_store)
    try:
        stored = hodei_store.create(document)
    except (InvalidInput, AlreadyExists):
        assert state(hodei_store) == before
        return
    for key, value in document.items():
        assert stored.document()[key] == value
    hodei_store.delete(stored.id)


# Control characters and bidirectional overrides are refused in names, regions and labels (they print as
# something else): tests/test_hostile_input.py tries them.
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
printable = st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_categories=["Cc", "Zl", "Zp"],
                          exclude_characters=BIDI)
words = st.text(printable, min_size=1, max_size=10).filter(lambda s: s == s.strip())
valid_documents = st.fixed_dictionaries(
    {"name": words, "provider_type": st.just("static")},
    optional={
        "config": st.fixed_dictionaries({}, optional={"latency_ms": st.floats(0, 1e6), "hang": st.booleans(),
                                                      "capabilities": st.fixed_dictionaries(
                                                          {}, optional={"cpu": st.floats(0, 512), "gpu": st.integers(0, 16)})}),
        "status": st.sampled_from(["ACTIVE", "DISABLED", "MAINTENANCE", "UNHEALTHY"]),
        "priority": st.integers(-(2**31), 2**31 - 1),
        "max_workers": st.integers(1, 2**31 - 1),
        "preferred_region": st.none() | words,
        "allowed_regions": st.lists(words, unique=True, max_size=4),
        "required_labels": st.dictionaries(words, words, max_size=4),
        "annotations": st.dictionaries(words, st.text(st.characters(exclude_characters=BIDI,
                                                                    exclude_categories=["Cs", "Cc", "Zl", "Zp"]),
                                                      max_size=5)
                                       .map(str.strip), max_size=4),
    })


@PROPERTY_SETTINGS
@given(document=valid_documents)
def test_valid_documents_round_trip_exactly(hodei_store: Store, document) -> None:
    stored = hodei_store.create(document)
    try:
        read = hodei_store.get(stored.id)
        assert read.valid, read.problems
        for key, value in document.items():
            assert read.document()[key] == value
    finally:
        hodei_store.delete(stored.id)
