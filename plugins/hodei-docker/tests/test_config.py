"""The ``docker`` provider type's config: the shared contract, every bound, and property tests."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hodei import ConfigError
from hodei.masking import mask_secrets
from hodei.testing.contract import ConfigContract
from hodei_docker import hodei_validate_config
from hypothesis import given
from hypothesis import strategies as st

MIB = 2**20
GIB = 2**30

SEED = {
    "type": "docker", "socket_path": "/var/run/docker.sock", "default_image": "hodei-jobs-worker:latest",
    "network": "host", "default_resources": {"cpu_limit": "2", "memory_limit": "4Gi"},
}

# The keys a deployment adds to the seed's, with their defaults.
DEPLOYMENT_DEFAULTS = {
    "endpoint": None, "tls": None, "command": None, "init": True, "stop_grace_seconds": 10.0, "labels": {},
    "registry_auth": None,
}

DEFAULTS = {
    "type": "docker", "capabilities": None, "socket_path": "/var/run/docker.sock",
    "default_image": "hodei-jobs-worker:latest", "network": "bridge",
    "default_resources": {"cpu_limit": 1.0, "memory_limit": GIB}, **DEPLOYMENT_DEFAULTS,
    "allowed_images": ["hodei-jobs-worker:latest"],  # left out: only default_image
}

SHA256 = "sha256:" + "a1" * 32


def validate(config: Any) -> dict[str, Any]:
    return hodei_validate_config(provider_type="docker", config=config)


def refused_fields(config: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate(config)
    return [p.field for p in info.value.problems]


def with_field(config: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``config`` with the value at ``a.b`` replaced."""
    changed = copy.deepcopy(config)
    *parents, leaf = dotted.split(".")
    target = changed
    for key in parents:
        target = target[key]
    target[leaf] = value
    return changed


def resources(**values: Any) -> dict[str, Any]:
    return {**SEED, "default_resources": values}


class TestDockerConfigContract(ConfigContract):
    config_fields = ("socket_path", "default_image", "network", "default_resources",
                     "default_resources.cpu_limit", "default_resources.memory_limit", "endpoint", "tls",
                     "command", "init", "stop_grace_seconds", "labels", "registry_auth")
    sdk_modules = ("docker",)
    provider_type = "docker"

    @pytest.fixture
    def valid_config(self) -> dict[str, Any]:
        return copy.deepcopy(SEED)

    @pytest.fixture
    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        bad_values = {
            "socket_path": [3, None, "", " /var/run/docker.sock", "var/run/docker.sock", "/" + "s" * 107,
                            "/var/run/\0docker.sock"],
            "default_image": [5, None, "", "Hodei-Worker:latest", "worker:latest extra", "worker:", ":latest",
                              "worker::1", "-worker", "worker/", "registry:port/worker", "a" * 256,
                              "worker:" + "t" * 129, "worker@sha256:abc", "worker@" + SHA256.upper(),
                              "worker@md5:" + "a" * 32],
            "network": [3, None, "", " host", ["host"]],
            "default_resources": [None, "2", ["2"]],
            "default_resources.cpu_limit": [0, 0.0, "0", "0m", -1, "-1", "two", "2 cores", True, None, [2]],
            "default_resources.memory_limit": [6 * MIB - 1, "6291455", "5Mi", "1Ki", 0, -1, "4GB", "lots",
                                               True, None, 4.5e-3],
        }
        cases = [(with_field(SEED, field, value), field)
                 for field, values in bad_values.items() for value in values]
        cases.append((resources(cpu_limit="2", disk="10Gi"), "default_resources.disk"))
        over_tcp = {"type": "docker", "endpoint": "tcp://10.0.0.5:2376"}
        cases += [
            ({**SEED, "endpoint": "tcp://10.0.0.5:2376"}, "endpoint"),  # and socket_path: which one is meant?
            ({"endpoint": "https://10.0.0.5:2376"}, "endpoint"),
            ({"endpoint": "tcp://10.0.0.5"}, "endpoint"),
            ({"endpoint": "tcp://:2376"}, "endpoint"),
            ({"endpoint": "tcp://10.0.0.5:99999"}, "endpoint"),
            ({"endpoint": "tcp://10.0.0.5:2376/v1.41"}, "endpoint"),
            ({"endpoint": "unix:///var/run/docker.sock"}, "endpoint"),
            ({"tls": {"verify": True}}, "tls"),  # TLS over a Unix socket means nothing
            ({**over_tcp, "tls": {"client_cert": "/etc/hodei/cert.pem"}}, "tls"),
            ({**over_tcp, "tls": {"ca_cert": "ca.pem"}}, "tls.ca_cert"),
            ({**over_tcp, "tls": {"verify": "yes"}}, "tls.verify"),
            ({**over_tcp, "tls": {"password": "x"}}, "tls.password"),
            ({"command": []}, "command"),
            ({"command": "sleep 3600"}, "command"),
            ({"command": ["sleep", ""]}, "command[1]"),
            ({"init": "true"}, "init"),
            ({"stop_grace_seconds": 0}, "stop_grace_seconds"),
            ({"stop_grace_seconds": 301}, "stop_grace_seconds"),
            ({"labels": {"team": 3}}, "labels.team"),
            ({"labels": {"hodei.worker-id": "mine"}}, "labels"),
            ({"labels": {"": "x"}}, "labels"),
            ({"labels": ["team=a"]}, "labels"),
            ({"registry_auth": {"username": "bot"}}, "registry_auth.password"),
            ({"registry_auth": {"username": "", "password": "pw"}}, "registry_auth.username"),
            ({"registry_auth": {"username": "bot", "password": "pw", "email": "x"}}, "registry_auth.email"),
        ]
        return cases


def test_seed_config_validates_and_is_normalised() -> None:
    assert validate(SEED) == {
        "type": "docker", "capabilities": None, "socket_path": "/var/run/docker.sock",
        "default_image": "hodei-jobs-worker:latest", "network": "host",
        "default_resources": {"cpu_limit": 2.0, "memory_limit": 4 * GIB}, **DEPLOYMENT_DEFAULTS,
        "allowed_images": ["hodei-jobs-worker:latest"],
    }


def test_every_key_has_the_documented_default() -> None:
    assert validate({"type": "docker"}) == DEFAULTS
    assert validate({"default_resources": {}})["default_resources"] == DEFAULTS["default_resources"]


@pytest.mark.parametrize("limit, cores", [("1m", 0.001), (0.001, 0.001), ("500m", 0.5), (64, 64.0)])
def test_any_positive_cpu_limit_is_accepted(limit: Any, cores: float) -> None:
    assert validate(resources(cpu_limit=limit))["default_resources"]["cpu_limit"] == cores


@pytest.mark.parametrize("limit", [6 * MIB, "6Mi", "6291456", 2**40])
def test_memory_limit_down_to_dockers_minimum_is_accepted(limit: Any) -> None:
    assert validate(resources(memory_limit=limit))["default_resources"]["memory_limit"] >= 6 * MIB


def test_memory_limit_just_below_dockers_minimum_is_refused_with_the_bound() -> None:
    with pytest.raises(ConfigError) as info:
        validate(resources(memory_limit=6 * MIB - 1))
    assert [(p.field, p.reason) for p in info.value.problems] == [(
        "default_resources.memory_limit", "must be at least 6Mi (6291456 bytes), Docker's minimum, got 6291455 bytes")]


def test_socket_path_up_to_the_unix_socket_limit_is_accepted() -> None:
    longest = "/" + "s" * 106
    assert validate({"socket_path": longest})["socket_path"] == longest
    assert refused_fields({"socket_path": longest + "s"}) == ["socket_path"]
    # The limit is in bytes: a two-byte character counts twice.
    assert refused_fields({"socket_path": "/" + "é" * 54}) == ["socket_path"]


@pytest.mark.parametrize("reference", [
    "hodei-jobs-worker:latest", "hodei-jobs-worker", "library/ubuntu:24.04", "ghcr.io/hodei/worker:v3",
    "registry.example.com:5000/team/worker:1.2.3-rc.1", "localhost:5000/worker", "localhost/worker",
    "Registry.Example.COM/worker", "[::1]:5000/worker", "worker:Latest_2", f"worker@{SHA256}",
    f"worker:v3@{SHA256}", "my__image", "a--b.c_d/e", "worker:" + "t" * 128, "worker@sha512:" + "0" * 128,
])
def test_docker_image_references_are_accepted(reference: str) -> None:
    assert validate({"default_image": reference})["default_image"] == reference


def test_uppercase_repository_is_refused_with_dockers_reason() -> None:
    with pytest.raises(ConfigError) as info:
        validate({"default_image": "hodei/Worker:latest"})
    assert [(p.field, p.reason) for p in info.value.problems] == [
        ("default_image", "repository name must be lowercase, got 'hodei/Worker:latest'")]


def test_uppercase_digest_is_refused_as_a_bad_digest() -> None:
    with pytest.raises(ConfigError) as info:
        validate({"default_image": "worker@" + SHA256.upper()})
    assert "digest" in info.value.problems[0].reason


def test_repository_name_of_255_characters_is_accepted_and_256_refused() -> None:
    name = "registry.example.com/" + "a" * (255 - len("registry.example.com/"))
    assert validate({"default_image": name + ":latest"})["default_image"] == name + ":latest"
    assert refused_fields({"default_image": name + "a:latest"}) == ["default_image"]


@pytest.mark.parametrize("network", ["bridge", "host", "none", "hodei_workers", "my-net.1"])
def test_builtin_and_user_networks_are_accepted(network: str) -> None:
    assert validate({"network": network})["network"] == network


@pytest.mark.parametrize("field, value", [
    ("cpu_limit", 10**400), ("memory_limit", "9" * 400 + "Gi"), ("memory_limit", 10**400)],
    ids=["cpu_limit-int", "memory_limit-string", "memory_limit-int"])
def test_absurdly_large_quantities_are_refused_not_crashed_on(field: str, value: Any) -> None:
    assert refused_fields(resources(**{field: value})) == [f"default_resources.{field}"]


# -- properties -------------------------------------------------------------------------------

_path_component = st.from_regex(r"[a-z0-9]{1,8}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,8}){0,2}", fullmatch=True)
_host = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?(?:\.[a-z0-9]{1,8}){0,2}", fullmatch=True)
_port = st.integers(min_value=1, max_value=65535).map(lambda port: f":{port}")
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.binary(min_size=32, max_size=32).map(lambda raw: f"sha256:{raw.hex()}")


@st.composite
def image_references(draw: st.DrawFn) -> str:
    reference = "/".join(draw(st.lists(_path_component, min_size=1, max_size=3)))
    if draw(st.booleans()):
        reference = draw(_host) + draw(st.just("") | _port) + "/" + reference
    if draw(st.booleans()):
        reference += ":" + draw(_tag)
    if draw(st.booleans()):
        reference += "@" + draw(_digest)
    return reference


@given(image_references())
def test_any_reference_dockers_grammar_produces_is_accepted(reference: str) -> None:
    assert validate({"default_image": reference})["default_image"] == reference


# -- deployment settings ----------------------------------------------------------------------

def test_an_endpoint_replaces_the_default_socket() -> None:
    normalised = validate({"endpoint": "tcp://docker.internal:2376"})
    assert (normalised["endpoint"], normalised["socket_path"]) == ("tcp://docker.internal:2376", None)
    assert validate(normalised) == normalised


@pytest.mark.parametrize("endpoint", ["tcp://10.0.0.5:2375", "tcp://docker-1.example.com:2376", "tcp://[::1]:2376"])
def test_tcp_endpoints_are_accepted(endpoint: str) -> None:
    assert validate({"endpoint": endpoint, "socket_path": None})["endpoint"] == endpoint


def test_endpoint_and_socket_path_together_are_refused_naming_endpoint() -> None:
    with pytest.raises(ConfigError) as info:
        validate({"endpoint": "tcp://10.0.0.5:2376", "socket_path": "/var/run/docker.sock"})
    assert [p.field for p in info.value.problems] == ["endpoint"]
    assert "socket_path" in info.value.problems[0].reason


def test_neither_socket_nor_endpoint_is_refused() -> None:
    assert refused_fields({"socket_path": None}) == ["socket_path"]


def test_tls_is_normalised_with_its_defaults() -> None:
    tls = {"ca_cert": "/etc/hodei/docker/ca.pem", "client_cert": "/etc/hodei/docker/cert.pem",
           "client_key": "/etc/hodei/docker/key.pem"}
    normalised = validate({"endpoint": "tcp://10.0.0.5:2376", "tls": tls})
    assert normalised["tls"] == {**tls, "verify": True}


def test_extra_labels_are_kept() -> None:
    assert validate({"labels": {"team": "ci", "cost-center": "42"}})["labels"] == {"team": "ci", "cost-center": "42"}


PASSWORD = "correct-horse-battery-staple"


def test_registry_password_is_kept_for_the_engine_but_hidden_from_repr() -> None:
    normalised = validate({"registry_auth": {"username": "bot", "password": PASSWORD}})
    assert normalised["registry_auth"] == {"username": "bot", "password": PASSWORD}
    assert PASSWORD in json.dumps(normalised), "the stored config must keep the password"
    assert PASSWORD not in repr(normalised) and PASSWORD not in str(normalised)
    assert validate(normalised) == normalised


def test_registry_password_is_masked_by_the_core(hodei_pm) -> None:
    normalised = validate({"registry_auth": {"username": "bot", "password": PASSWORD}})
    masked = mask_secrets(normalised, hodei_pm.provider_type("docker").secret_fields)
    assert masked["registry_auth"] == {"username": "bot", "password": "***"}


@pytest.mark.parametrize("registry_auth, field", [
    ({"username": "bot", "password": 1234567890}, "registry_auth.password"),
    ({"username": "bot", "password": [PASSWORD]}, "registry_auth.password"),
    (f"bot:{PASSWORD}", "registry_auth"),
    ([PASSWORD], "registry_auth"),
])
def test_a_mistyped_credential_is_refused_without_quoting_it(registry_auth: Any, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate({"registry_auth": registry_auth})
    assert [p.field for p in info.value.problems] == [field]
    assert PASSWORD not in str(info.value) and "1234567890" not in str(info.value)


def test_allowed_images_take_references_and_globs_and_refuse_what_docker_would_not_pull() -> None:
    allowed = ["registry.example.com/jobs/*", "python:3.12", "ghcr.io/acme/worker@" + SHA256]
    assert validate({"allowed_images": allowed})["allowed_images"] == allowed
    for entry in ("Python:3.12", "python 3.12", ""):
        with pytest.raises(ConfigError) as refused:
            validate({"allowed_images": [entry]})
        assert [p.field for p in refused.value.problems] == ["allowed_images"], entry
