"""Each provider's state is exported by one daemon: the one that owns it among the replicas.

The collector is read as Prometheus reads it (prometheus-client's text exposition, parsed back). The
property: whatever the providers and the live daemons, rendezvous hashing plus the collector export
every provider's gauges exactly once across the replicas, as one daemon alone exports them.
"""

from __future__ import annotations

import uuid
from collections import Counter
from types import SimpleNamespace
from typing import Any

from hodei.daemon.membership import owners
from hodei.domain import ProviderState, ProviderStatus
from hodei.observability.metrics import SPECS, DaemonCollector
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

PER_PROVIDER = {spec.name for spec in SPECS if spec.type == "gauge" and "provider" in spec.labels}


def fleet(names: list[str]) -> Any:
    providers = {uuid.uuid5(uuid.NAMESPACE_DNS, name): SimpleNamespace(
        name=name, provider_type="static", status=ProviderStatus.ACTIVE, max_workers=3) for name in names}
    return SimpleNamespace(providers=providers, states={key: ProviderState() for key in providers}, invalid={})


def membership(owned: set[uuid.UUID] | None, *, divided: bool = True) -> Any:
    return SimpleNamespace(owned=owned, divided=divided, live=[object()] * 3,
                           owned_count=0 if owned is None else len(owned))


def exported(collector: DaemonCollector) -> Counter[tuple[str, str]]:
    """(metric, provider) of every per-provider sample one scrape shows."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    return Counter((sample.name, sample.labels["provider"]) for family in text_string_to_metric_families(text)
                   for sample in family.samples if sample.name in PER_PROVIDER)


def collector(the_fleet: Any, the_membership: Any = None) -> DaemonCollector:
    return DaemonCollector(the_fleet, database_up=lambda: True, ready=lambda: True, membership=the_membership)


def test_a_daemon_exports_only_the_providers_it_owns() -> None:
    the_fleet = fleet(["a", "b", "c"])
    a_id = next(key for key, p in the_fleet.providers.items() if p.name == "a")
    alone = exported(collector(the_fleet))
    assert {provider for _, provider in alone} == {"a", "b", "c"}
    assert exported(collector(the_fleet, membership(None))) == alone  # alone among the replicas: every one
    assert {provider for _, provider in exported(collector(the_fleet, membership({a_id})))} == {"a"}
    assert exported(collector(the_fleet, membership(set()))) == Counter()  # its lease lapsed: none


def test_a_joining_daemon_exports_no_provider_before_it_knows_its_share() -> None:
    the_fleet = fleet(["a", "b"])
    scrape = collector(the_fleet, membership(None, divided=False))
    assert exported(scrape) == Counter()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(scrape)
    assert registry.get_sample_value("hodei_daemon_ready") == 1.0  # the daemon's own gauges are there


@given(names=st.lists(st.text("abcdefghij", min_size=1, max_size=6), unique=True, max_size=25),
       daemons=st.integers(min_value=1, max_value=5))
def test_replicas_together_export_each_provider_once_as_one_daemon_does(names: list[str], daemons: int) -> None:
    the_fleet = fleet(names)
    ids = [str(uuid.UUID(int=i + 1)) for i in range(daemons)]
    shares = owners(the_fleet.providers, ids)
    together: Counter[tuple[str, str]] = Counter()
    for daemon in ids:
        together += exported(collector(the_fleet, membership({p for p, o in shares.items() if o == daemon})))
    assert together == exported(collector(the_fleet))
