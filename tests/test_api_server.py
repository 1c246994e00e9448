"""The gRPC API against a real server on a loopback port: every call, every error code, optimistic
concurrency, masking, health and reflection; random malformed requests refused with INVALID_ARGUMENT."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format, struct_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hodei import database
from hodei.api.v1 import providers_pb2 as pb
from hodei.api.v1 import providers_pb2_grpc as pb_grpc
from hodei.api.v1 import selection_pb2 as spb
from hodei.api.v1 import selection_pb2_grpc as spb_grpc
from hodei.daemon import Daemon
from hodei.settings import Settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]


def daemon_settings(url: str, **api: Any) -> Settings:
    return Settings.model_validate({
        "database": {"url": url}, "metrics": {"listen": ""},
        "health": {"interval_seconds": 0.2, "timeout_seconds": 0.5},
        "daemon": {"poll_seconds": 0.05, "resync_seconds": 30.0, "shutdown_grace_seconds": 1.0,
                   "database_timeout_seconds": 5.0},
        "api": {"listen": "127.0.0.1:0", **api},
    })


@contextmanager
def api_server(url: str, **api: Any) -> Iterator[Daemon]:
    """The daemon's configuration watcher and API server (no health monitor), in a thread of their own."""
    engine = database.create_engine(url)
    database.upgrade(engine)
    engine.dispose()
    daemon = Daemon(daemon_settings(url, **api))
    done, up, failure = threading.Event(), threading.Event(), []

    async def main() -> None:
        async with anyio.create_task_group() as group:
            await group.start(daemon.watcher.run)
            await group.start(daemon.api.run)
            daemon.ready = True
            up.set()
            while not done.is_set():
                await anyio.sleep(0.02)
            daemon.stopping = True
            daemon.api.stop()
            daemon.watcher.stop()
            group.cancel_scope.cancel()

    def run() -> None:
        try:
            anyio.run(main)
        except BaseException as exc:  # reported to the test
            failure.append(exc)
            up.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert up.wait(30), "the API server did not start"
    if failure:
        raise failure[0]
    try:
        yield daemon
    finally:
        done.set()
        thread.join(30)
        daemon.store.close()


class Client:
    def __init__(self, channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()):
        self.providers = pb_grpc.ProviderServiceStub(channel)
        self.selection = spb_grpc.SelectionServiceStub(channel)
        self.metadata = metadata

    def __getattr__(self, name: str) -> Any:
        stub = self.selection if name in ("Select", "Explain") else self.providers
        method = getattr(stub, name)
        return lambda request: method(request, metadata=self.metadata, timeout=20)


@pytest.fixture
def server(hodei_database_url: str) -> Iterator[Daemon]:
    with api_server(hodei_database_url) as daemon:
        yield daemon


@pytest.fixture
def api(server: Daemon) -> Iterator[Client]:
    with grpc.insecure_channel(server.api.address) as channel:
        yield Client(channel)


def refused(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request)
    return caught.value


def bad_request(error: grpc.RpcError) -> list[tuple[str, str]]:
    for key, value in error.trailing_metadata():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    message = error_details_pb2.BadRequest()
                    detail.Unpack(message)
                    return [(v.field, v.description) for v in message.field_violations]
    return []


def value(obj: Any) -> struct_pb2.Value:
    return json_format.ParseDict(obj, struct_pb2.Value())


def new(name: str, **fields: Any) -> pb.CreateProviderRequest:
    config = fields.pop("config", None)
    message = pb.ProviderConfig(name=name, provider_type=fields.pop("provider_type", "static"), **fields)
    if config is not None:
        message.config.CopyFrom(value(config))
    return pb.CreateProviderRequest(config=message)


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


# -- the messages ----------------------------------------------------------------------------------


def test_the_seeds_update_request_has_its_field_numbers() -> None:
    fields = {f.name: (f.number, f.message_type.full_name if f.message_type else f.type)
              for f in pb.UpdateProviderRequest.DESCRIPTOR.fields}
    assert fields["provider_id"] == (1, 9)  # string
    assert fields["config"] == (2, "hodei.api.v1.ProviderConfig")


# -- every call -----------------------------------------------------------------------------------


def test_create_get_list_update_delete(api: Client) -> None:
    created = api.CreateProvider(new("a", priority=5, preferred_region="eu-west-1", allowed_regions=["us-east-1"],
                                     required_labels={"env": "prod"}, config={"latency_ms": 1}))
    assert created.config.name == "a" and created.valid and created.version
    assert json_format.MessageToDict(created.config.config) == {"latency_ms": 1}
    api.CreateProvider(new("b", status="DISABLED", max_workers=3, required_labels={"env": "dev"}))
    by_id = api.GetProvider(pb.GetProviderRequest(provider_id=created.id))
    by_name = api.GetProvider(pb.GetProviderRequest(provider_id="a"))
    assert by_id == by_name and by_id.config.priority == 5 and by_id.state.health == ""

    def names(**filters: Any) -> list[str]:
        return [p.config.name for p in api.ListProviders(pb.ListProvidersRequest(**filters)).providers]
    assert names() == ["a", "b"]
    assert names(status="DISABLED") == ["b"]
    assert names(provider_type="static", labels={"env": "prod"}) == ["a"]
    assert names(region="us-east-1") == names(region="eu-west-1") == ["a"]
    assert names(region="ap-south-1") == [] and names(provider_type="docker") == []

    updated = api.UpdateProvider(pb.UpdateProviderRequest(
        provider_id="a", config=pb.ProviderConfig(priority=0, max_workers=7), update_mask=mask("priority", "max_workers")))
    assert (updated.config.priority, updated.config.max_workers) == (0, 7)
    # No mask: the fields that are set change, the others stay.
    renamed = api.UpdateProvider(pb.UpdateProviderRequest(provider_id=created.id, config=pb.ProviderConfig(name="a2")))
    assert renamed.config.name == "a2" and renamed.config.max_workers == 7
    assert list(renamed.config.required_labels.items()) == [("env", "prod")]
    cleared = api.UpdateProvider(pb.UpdateProviderRequest(
        provider_id="a2", config=pb.ProviderConfig(), update_mask=mask("preferred_region", "required_labels")))
    assert not cleared.config.HasField("preferred_region") and not cleared.config.required_labels

    removed = api.DeleteProvider(pb.DeleteProviderRequest(provider_id="a2"))
    assert removed.config.name == "a2"
    assert names() == ["b"]


def test_the_seeds_config_merge_and_a_replacement(api: Client) -> None:
    api.CreateProvider(new("k", config={"latency_ms": 1, "health_reason": "x"}))
    merged = api.UpdateProvider(pb.UpdateProviderRequest(
        provider_id="k", config=pb.ProviderConfig(config=value({"health_reason": "y"})), merge_config=True))
    assert json_format.MessageToDict(merged.config.config) == {"latency_ms": 1, "health_reason": "y"}
    replaced = api.UpdateProvider(pb.UpdateProviderRequest(
        provider_id="k", config=pb.ProviderConfig(config=value({"hang": False}))))
    assert json_format.MessageToDict(replaced.config.config) == {"hang": False}


def test_set_status_and_history(api: Client) -> None:
    api.CreateProvider(new("s"))
    for status in ("DISABLED", "MAINTENANCE", "ACTIVE"):
        answer = api.SetProviderStatus(pb.SetProviderStatusRequest(provider_id="s", status=status, cause=f"to {status}"))
        assert answer.config.status == status
    history = api.GetProviderHistory(pb.GetProviderHistoryRequest(provider_id="s")).entries
    assert [(e.kind, e.old_value, e.new_value, e.cause) for e in history] == [
        ("status", "MAINTENANCE", "ACTIVE", "to ACTIVE"), ("status", "DISABLED", "MAINTENANCE", "to MAINTENANCE"),
        ("status", "ACTIVE", "DISABLED", "to DISABLED"), ("created", "", "static", "created")]
    assert len(api.GetProviderHistory(pb.GetProviderHistoryRequest(provider_id="s", limit=1)).entries) == 1


def test_select_and_explain_match_the_local_selector(server: Daemon, api: Client) -> None:
    from hodei.services.local import selector_from_database

    api.CreateProvider(new("hi", priority=10, required_labels={"env": "prod"}))
    api.CreateProvider(new("lo", priority=1, required_labels={"env": "prod"}))
    api.CreateProvider(new("dev", priority=50, required_labels={"env": "dev"}))
    job = {"required_labels": {"env": "prod"}, "cpu": 0}
    answer = api.Select(spb.SelectRequest(requirements=json_format.ParseDict(job, struct_pb2.Struct())))
    local = selector_from_database(server.store, server.states, server.chain)
    report = local.report(server.chain.parse_requirements(job))
    assert answer.selected == "hi" and answer.text == report.text()
    assert answer.summary == report.summary
    explained = api.Explain(spb.ExplainRequest(provider="dev", requirements=json_format.ParseDict(
        job, struct_pb2.Struct())))
    assert not explained.fits and explained.text == local.explain("dev", server.chain.parse_requirements(job)).text()


# -- every error code -----------------------------------------------------------------------------


def test_invalid_argument_names_the_field_and_changes_nothing(api: Client) -> None:
    error = refused(api.CreateProvider, new("x", max_workers=0, config={"latency_ms": -1}))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert ("max_workers", "must be at least 1, got 0") in bad_request(error)
    assert any(field == "config.latency_ms" for field, _ in bad_request(error))
    assert "Traceback" not in error.details()
    error = refused(api.CreateProvider, new("x", provider_type="nope"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and bad_request(error)[0][0] == "provider_type"
    error = refused(api.UpdateProvider, pb.UpdateProviderRequest(provider_id="", config=pb.ProviderConfig(name="y")))
    assert bad_request(error) == [("provider_id", "is required")]
    api.CreateProvider(new("x"))
    error = refused(api.UpdateProvider, pb.UpdateProviderRequest(provider_id="x", update_mask=mask("colour")))
    assert bad_request(error)[0][0] == "update_mask"
    error = refused(api.UpdateProvider, pb.UpdateProviderRequest(provider_id="x"))
    assert bad_request(error)[0] == ("update_mask", "nothing to change: set fields of config, or name them here")
    error = refused(api.SetProviderStatus, pb.SetProviderStatusRequest(provider_id="x", status="UNHEALTHY"))
    assert bad_request(error)[0][0] == "status"
    error = refused(api.ListProviders, pb.ListProvidersRequest(status="ON"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    error = refused(api.Select, spb.SelectRequest(requirements=json_format.ParseDict({"cpu": "lots"},
                                                                                      struct_pb2.Struct())))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and bad_request(error)[0][0] == "cpu"
    assert [p.config.name for p in api.ListProviders(pb.ListProvidersRequest()).providers] == ["x"]


def test_not_found_already_exists_and_failed_precondition(api: Client) -> None:
    for call, request in ((api.GetProvider, pb.GetProviderRequest(provider_id="ghost")),
                          (api.DeleteProvider, pb.DeleteProviderRequest(provider_id="ghost")),
                          (api.SetProviderStatus, pb.SetProviderStatusRequest(provider_id="ghost", status="ACTIVE")),
                          (api.UpdateProvider, pb.UpdateProviderRequest(provider_id="ghost",
                                                                        config=pb.ProviderConfig(priority=1))),
                          (api.GetProviderHistory, pb.GetProviderHistoryRequest(provider_id="ghost")),
                          (api.Explain, spb.ExplainRequest(provider="ghost"))):
        error = refused(call, request)
        assert error.code() is grpc.StatusCode.NOT_FOUND, request
        assert error.details() == "no provider named 'ghost'"
    api.CreateProvider(new("dup", status="MAINTENANCE"))
    error = refused(api.CreateProvider, new("dup"))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS and error.details() == "a provider named 'dup' exists already"
    error = refused(api.Select, spb.SelectRequest())
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == "0/1 providers available: 1 not ACTIVE (dup: MAINTENANCE)"
    details = dict(error.trailing_metadata())["grpc-status-details-bin"]
    report = spb.SelectResponse()
    assert any(d.Unpack(report) for d in status_pb2.Status.FromString(details).details if d.Is(report.DESCRIPTOR))
    assert report.rejected[0].name == "dup" and "0/1 providers available" in report.text


def test_a_stale_version_is_aborted(api: Client) -> None:
    read = api.CreateProvider(new("v"))
    first = api.UpdateProvider(pb.UpdateProviderRequest(provider_id="v", config=pb.ProviderConfig(priority=1),
                                                        expected_version=read.version))
    assert first.version != read.version
    error = refused(api.UpdateProvider, pb.UpdateProviderRequest(provider_id="v", config=pb.ProviderConfig(priority=2),
                                                                 expected_version=read.version))
    assert error.code() is grpc.StatusCode.ABORTED and "changed since it was read" in error.details()
    assert api.GetProvider(pb.GetProviderRequest(provider_id="v")).config.priority == 1
    error = refused(api.UpdateProvider, pb.UpdateProviderRequest(provider_id="v", config=pb.ProviderConfig(priority=2),
                                                                 expected_version="yesterday"))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and bad_request(error)[0][0] == "expected_version"


def test_concurrent_updates_with_one_version_let_exactly_one_through(api: Client) -> None:
    read = api.CreateProvider(new("race"))
    outcomes: list[str] = []

    def attempt(priority: int) -> None:
        try:
            api.UpdateProvider(pb.UpdateProviderRequest(provider_id="race", config=pb.ProviderConfig(priority=priority),
                                                        expected_version=read.version))
            outcomes.append("ok")
        except grpc.RpcError as exc:
            outcomes.append(exc.code().name)
    threads = [threading.Thread(target=attempt, args=(i + 1,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ABORTED"] * 5 + ["ok"]


def test_secrets_come_back_masked(api: Client, server: Daemon) -> None:
    assert "docker" in server.pm.provider_types, server.pm.load_errors  # installed with the repository
    created = api.CreateProvider(new("d", provider_type="docker", config={
        "registry_auth": {"username": "u", "password": "hunter2"}}))
    assert created.config.config.struct_value.fields["registry_auth"].struct_value.fields["password"].string_value \
        == "***"
    listed = api.ListProviders(pb.ListProvidersRequest()).providers[0]
    assert "hunter2" not in str(listed) and "hunter2" not in str(api.GetProvider(pb.GetProviderRequest(
        provider_id="d")))


# -- health and reflection ------------------------------------------------------------------------


def health_status(channel: grpc.Channel, service: str = "", seconds: float = 5.0) -> int:
    """The health service's answer, once it has taken in the daemon's readiness (it does within 0.1 s)."""
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + seconds
    while True:
        status = stub.Check(health_pb2.HealthCheckRequest(service=service)).status
        if status == health_pb2.HealthCheckResponse.SERVING or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


def test_health_and_reflection(server: Daemon) -> None:
    with grpc.insecure_channel(server.api.address) as channel:
        for service in ("", "hodei.api.v1.ProviderService", "hodei.api.v1.SelectionService"):
            assert health_status(channel, service) == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in answers[0].list_services_response.service}
        assert {"hodei.api.v1.ProviderService", "hodei.api.v1.SelectionService", "grpc.health.v1.Health"} <= names


# -- malformed requests ---------------------------------------------------------------------------

_text = st.one_of(st.just(""), st.just(" "), st.just("a" * 201), st.just("x\x00y"), st.text(max_size=8))
_json = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                 max_size=3), max_leaves=6)
_bad_fields = st.one_of(
    st.builds(lambda v: ("name", {"name": v}), st.sampled_from(["", "n" * 201, "a\x00"])),
    st.builds(lambda v: ("provider_type", {"provider_type": v}), st.sampled_from(["", "nope", "docker "])),
    st.builds(lambda v: ("max_workers", {"max_workers": v}), st.integers(-(2**31), 0)),
    st.builds(lambda v: ("status", {"status": v}), _text.filter(
        lambda s: s not in ("ACTIVE", "DISABLED", "MAINTENANCE", "UNHEALTHY"))),
    st.builds(lambda v: ("preferred_region", {"preferred_region": v}), st.just("")),
    st.builds(lambda v: ("allowed_regions", {"allowed_regions": v}), st.sampled_from([["a", "a"], [""]])),
    st.builds(lambda k, v: ("required_labels", {"required_labels": {k: v}}), st.text(min_size=1, max_size=3),
              st.sampled_from([" x", "x ", "\t"])),
    st.builds(lambda c: ("config", {"config": c}), st.one_of(
        _json.filter(lambda c: not isinstance(c, dict)),
        st.dictionaries(st.sampled_from(["latency_ms", "hang", "health", "colour"]), _json, min_size=1).filter(
            lambda c: set(c) - {"hang", "health", "latency_ms"} or any(
                not isinstance(v, bool) for k, v in c.items() if k == "hang") or any(
                v not in ("Healthy", "Degraded", "Unhealthy") for k, v in c.items() if k == "health") or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0
                for k, v in c.items() if k == "latency_ms")))),
)


def _config(fields: dict[str, Any]) -> pb.ProviderConfig:
    fields = dict(fields)
    has_config, config = "config" in fields, fields.pop("config", None)
    message = pb.ProviderConfig(**fields)
    if has_config:  # JSON null included
        message.config.CopyFrom(value(config))
    return message


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Daemon]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'hodei.db'}"
    with api_server(url) as daemon, grpc.insecure_channel(daemon.api.address) as channel:
        client = Client(channel)
        client.CreateProvider(new("keep", priority=3, config={"latency_ms": 1}))
        yield client, daemon


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=_bad_fields, how=st.sampled_from(["create", "update", "update-masked"]))
def test_malformed_requests_are_invalid_argument_and_change_nothing(shared_api: tuple[Client, Daemon], bad: Any,
                                                                    how: str) -> None:
    api, _ = shared_api
    field, fields = bad
    before = api.ListProviders(pb.ListProvidersRequest())
    if how == "create":
        request: Any = pb.CreateProviderRequest(config=_config({"name": "new", "provider_type": "static", **fields}))
        call = api.CreateProvider
    else:
        call = api.UpdateProvider
        request = pb.UpdateProviderRequest(provider_id="keep", config=_config(fields),
                                           update_mask=mask(field) if how == "update-masked" else None)
    if how == "update" and field in ("name", "provider_type", "preferred_region") and not fields[field]:
        request.update_mask.paths.append(field)  # an empty string is "not set" without a mask
    error = refused(call, request)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
    assert bad_request(error) and "Traceback" not in error.details()
    assert api.ListProviders(pb.ListProvidersRequest()) == before


# -- security -------------------------------------------------------------------------------------


def test_a_token_is_required_except_for_health(hodei_sqlite_url: str, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-token\n", encoding="utf-8")
    with api_server(hodei_sqlite_url, token_file=str(token)) as daemon, \
            grpc.insecure_channel(daemon.api.address) as channel:
        for metadata, reason in (((), "this server requires a bearer token"),
                                 ((("authorization", "Bearer wrong"),), "the bearer token is not valid"),
                                 ((("authorization", "s3cret-token"),), "this server requires a bearer token")):
            error = refused(Client(channel, metadata).ListProviders, pb.ListProvidersRequest())
            assert error.code() is grpc.StatusCode.UNAUTHENTICATED and reason in error.details()
        ok = Client(channel, (("authorization", "Bearer s3cret-token"),))
        assert ok.ListProviders(pb.ListProvidersRequest()).providers == []
        assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING


def test_beyond_loopback_a_token_is_required() -> None:
    from hodei.errors import InvalidInput

    for listen in ("0.0.0.0:50051", "[::]:50051", "example.org:50051"):
        with pytest.raises(Exception) as caught:
            Settings.model_validate({"api": {"listen": listen}})
        assert "token_file is required" in str(caught.value)
    assert Settings.model_validate({"api": {"listen": "0.0.0.0:1", "token_file": "t"}}).api.token_file == "t"
    assert Settings.model_validate({"api": {"listen": "[::1]:1"}}).api.loopback
    assert InvalidInput  # the CLI reports a settings error as one line naming [api]


def _certificates(folder: Path) -> dict[str, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    files: dict[str, Path] = {}

    def write(name: str, key: Any, cert: x509.Certificate) -> None:
        files[f"{name}.key"] = folder / f"{name}.key"
        files[f"{name}.key"].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
        files[f"{name}.crt"] = folder / f"{name}.crt"
        files[f"{name}.crt"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue(name: str, issuer: Any, issuer_key: Any, *, ca: bool = False, server: bool = False) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        if not ca:
            builder = builder.add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        cert = builder.sign(issuer_key or key, hashes.SHA256())
        write(name, key, cert)
        return key, cert

    ca_key, ca_cert = issue("ca", None, None, ca=True)
    issue("server", ca_cert.subject, ca_key, server=True)
    issue("client", ca_cert.subject, ca_key)
    other_key, other_cert = issue("other-ca", None, None, ca=True)
    issue("stranger", other_cert.subject, other_key)
    return files


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, Path]:
    return _certificates(tmp_path)


def _secure(address: str, files: dict[str, Path], client: str | None = None) -> grpc.Channel:
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(
        root_certificates=files["ca.crt"].read_bytes(),
        private_key=files[f"{client}.key"].read_bytes() if client else None,
        certificate_chain=files[f"{client}.crt"].read_bytes() if client else None))


def test_tls(hodei_sqlite_url: str, certificates: dict[str, Path]) -> None:
    with api_server(hodei_sqlite_url, tls_cert_file=str(certificates["server.crt"]),
                    tls_key_file=str(certificates["server.key"])) as daemon:
        assert daemon.api.url.startswith("grpcs://")
        with _secure(daemon.api.address, certificates) as channel:
            assert Client(channel).ListProviders(pb.ListProvidersRequest()).providers == []
        with grpc.insecure_channel(daemon.api.address) as channel:
            error = refused(Client(channel).ListProviders, pb.ListProvidersRequest())
            assert error.code() is grpc.StatusCode.UNAVAILABLE


def test_mutual_tls(hodei_sqlite_url: str, certificates: dict[str, Path]) -> None:
    with api_server(hodei_sqlite_url, tls_cert_file=str(certificates["server.crt"]),
                    tls_key_file=str(certificates["server.key"]),
                    client_ca_file=str(certificates["ca.crt"])) as daemon:
        with _secure(daemon.api.address, certificates, "client") as channel:
            client = Client(channel)
            assert client.ListProviders(pb.ListProvidersRequest()).providers == []
            # The client certificate's common name is part of who made a change.
            client.CreateProvider(new("m"))
            client.SetProviderStatus(pb.SetProviderStatusRequest(provider_id="m", status="DISABLED"))
            entries = client.GetProviderHistory(pb.GetProviderHistoryRequest(provider_id="m")).entries
            assert [e.kind for e in entries] == ["status", "created"]
            for entry in entries:
                assert re.fullmatch(r"api ipv4:127\.0\.0\.1:\d+ \(client client, no token\)", entry.actor), entry.actor
        for client in (None, "stranger"):
            with _secure(daemon.api.address, certificates, client) as channel:
                error = refused(Client(channel).ListProviders, pb.ListProvidersRequest())
                assert error.code() is grpc.StatusCode.UNAVAILABLE, client


def test_check_providers_checks_now_records_and_refuses_bad_input(server: Daemon, api: Client) -> None:
    import math

    import sqlalchemy as sa

    api.CreateProvider(new("up", config={"latency_ms": 1}, max_workers=4))
    down = api.CreateProvider(new("down", config={"health": "Unhealthy", "health_reason": "socket refused"}))
    api.CreateProvider(new("bad"))
    with server.store.engine.begin() as connection:
        connection.execute(sa.text("""UPDATE provider_configs SET config = '{"latency_ms": "slow"}' WHERE name = 'bad'"""))
    answer = api.CheckProviders(pb.CheckProvidersRequest())
    assert [(r.name, r.health, r.reason, r.max_workers) for r in answer.results] == [
        ("down", "Unhealthy", "socket refused", 10), ("up", "Healthy", "", 4)]
    assert not answer.results[0].HasField("active_workers") and answer.results[1].active_workers == 0
    assert 0 <= answer.results[1].duration_seconds < 5
    assert [(s.name, [p.field for p in s.problems]) for s in answer.skipped] == [("bad", ["config.latency_ms"])]
    # Recorded, and the daemon's own view (its selection) has it at once.
    assert api.GetProvider(pb.GetProviderRequest(provider_id="down")).state.health == "Unhealthy"
    assert server.fleet.states[uuid.UUID(down.id)].health_reason == "socket refused"
    assert [r.name for r in api.CheckProviders(pb.CheckProvidersRequest(providers=["up", down.id, "up"])).results] \
        == ["down", "up"]
    error = refused(api.CheckProviders, pb.CheckProvidersRequest(providers=["ghost"]))
    assert error.code() is grpc.StatusCode.NOT_FOUND and "ghost" in error.details()
    error = refused(api.CheckProviders, pb.CheckProvidersRequest(providers=["bad"]))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT and [f for f, _ in bad_request(error)] == ["bad"]
    for timeout in (0.0, -0.0, -1.0, math.nan, math.inf, 300.5):
        error = refused(api.CheckProviders, pb.CheckProvidersRequest(timeout_seconds=timeout))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, timeout
        assert [f for f, _ in bad_request(error)] == ["timeout_seconds"], timeout
    error = refused(api.CheckProviders, pb.CheckProvidersRequest(providers=[f"p{i}" for i in range(1001)]))
    assert [f for f, _ in bad_request(error)] == ["providers"]
