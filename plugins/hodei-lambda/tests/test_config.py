"""The ``lambda`` provider type's config: the shared contract, every bound, and property tests."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hodei import ConfigError
from hodei.testing.contract import ConfigContract
from hodei_lambda import hodei_validate_config
from hodei_lambda.aws_names import partition_of
from hodei_lambda.config import RUNTIMES
from hypothesis import given
from hypothesis import strategies as st

COMMON_LAYER = "arn:aws:lambda:us-east-1:123456789:layer:common:1"

SEED = {
    "type": "lambda", "region": "us-east-1", "runtime": "provided.al2", "timeout_seconds": 900, "memory_mb": 1024,
    "layers": [COMMON_LAYER],
}

ADDED_DEFAULTS = {"function_name": "hodei-worker", "endpoint_url": None, "profile": None}

DEFAULTS = {
    "type": "lambda", "capabilities": None, "region": "us-east-1", "runtime": "provided.al2023",
    "timeout_seconds": 300, "memory_mb": 1024, "layers": [], **ADDED_DEFAULTS,
}


def function_arn(name: str = "hodei-worker", region: str = "us-east-1", account: str = "123456789012",
                 partition: str = "aws", qualifier: str | None = None) -> str:
    arn = f"arn:{partition}:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def validate(config: Any) -> dict[str, Any]:
    return hodei_validate_config(provider_type="lambda", config=config)


def refused(config: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        validate(config)
    return [(p.field, p.reason) for p in info.value.problems]


def refused_fields(config: Any) -> list[str]:
    return [field for field, _ in refused(config)]


def layer(name: str = "common", version: int = 1, region: str = "us-east-1", account: str = "123456789012",
          partition: str = "aws") -> str:
    return f"arn:{partition}:lambda:{region}:{account}:layer:{name}:{version}"


class TestLambdaConfigContract(ConfigContract):
    config_fields = ("region", "runtime", "timeout_seconds", "memory_mb", "layers", "function_name", "endpoint_url",
                     "profile")
    sdk_modules = ("boto3", "botocore")
    provider_type = "lambda"

    @pytest.fixture
    def valid_config(self) -> dict[str, Any]:
        return copy.deepcopy(SEED)

    @pytest.fixture
    def invalid_configs(self) -> list[tuple[dict[str, Any], str]]:
        bad_values = {
            "region": [None, 3, "", "US-EAST-1", "us-east", "useast1", "us-eats-1", "us-east-1 ", "us_east_1",
                       "mars-north-1", "us-east-100", "aws-global"],
            "runtime": [None, 3, "", "python", "python3.8", "go1.x", "provided", "nodejs16.x", "Python3.12",
                        "provided.al2 "],
            "timeout_seconds": [0, 901, -1, None, "900", 900.0, True, 2**64],
            "memory_mb": [127, 10241, 0, None, "1024", 1024.0, False, 1e6],
            "layers": [None, COMMON_LAYER, {}, [layer(version=v, name=f"l{v}") for v in range(1, 7)],
                       [COMMON_LAYER, COMMON_LAYER], [layer(version=1), layer(version=2)]],
            "function_name": [None, 3, "", "hodei worker", "f" * 65, "hodei-worker:", "hodei-worker:a:b",
                              "hodei-worker:" + "q" * 129, " hodei-worker", "hodei.worker", COMMON_LAYER,
                              function_arn(region="eu-west-1"), function_arn(account="123456789"),
                              function_arn(partition="aws-cn"), "123456789012:function:hodei-worker",
                              "arn:aws:lambda:us-east-1:123456789012:function:"],
            "endpoint_url": [3, "", "localhost:4566", "ftp://lambda.example.com", "http://", "http://x:99999",
                             "http://x:port", "https://x?a=1", "http://x#f", " http://x", "http://[::1",
                             "https://user:secret@lambda.example.com"],
            "profile": [3, "", " hodei", "hodei "],
        }
        cases = [({**SEED, field: value}, field) for field, values in bad_values.items() for value in values]
        bad_layers = [
            3, None, "", "common", "arn:aws:lambda:us-east-1:123456789:layer:common",
            "arn:aws:lambda:us-east-1:123456789:layer:common:0", "arn:aws:lambda:us-east-1:123456789:layer:common:v1",
            "arn:aws:lambda:us-east-1:1234567890123:layer:common:1", "arn:aws:lambda:us-east-1::layer:common:1",
            "arn:aws:lambda:us-east-1:123456789:function:common:1", "arn:aws:s3:us-east-1:123456789:layer:common:1",
            "arn:gcp:lambda:us-east-1:123456789:layer:common:1", "arn:aws:lambda:us-east-1:123456789:layer:com mon:1",
            "arn:aws:lambda:us-east-1:123456789:layer:" + "n" * 141 + ":1", " " + COMMON_LAYER,
            layer(region="us-west-2"), layer(region="cn-north-1", partition="aws-cn"),
            layer(partition="aws-cn"), layer(region="us-eats-1"),
        ]
        cases += [({**SEED, "layers": [bad]}, "layers[0]") for bad in bad_layers]
        cases.append(({**SEED, "layers": [COMMON_LAYER, layer(region="eu-west-1")]}, "layers[1]"))
        return cases


def test_seed_config_validates_and_is_normalised() -> None:
    assert validate(SEED) == {**SEED, "capabilities": None, **ADDED_DEFAULTS}


def test_every_key_has_the_documented_default() -> None:
    assert validate({"type": "lambda"}) == DEFAULTS


@pytest.mark.parametrize("field, lowest, highest", [("timeout_seconds", 1, 900), ("memory_mb", 128, 10240)])
def test_integer_bounds_are_inclusive_and_named(field: str, lowest: int, highest: int) -> None:
    assert validate({field: lowest})[field] == lowest
    assert validate({field: highest})[field] == highest
    assert refused({field: lowest - 1}) == [(field, f"must be at least {lowest}, got {lowest - 1}")]
    assert refused({field: highest + 1}) == [(field, f"must be at most {highest}, got {highest + 1}")]


@pytest.mark.parametrize("field", ["timeout_seconds", "memory_mb"])
@pytest.mark.parametrize("value", [True, "300", 300.0])
def test_integers_must_be_json_integers(field: str, value: Any) -> None:
    assert refused_fields({field: value}) == [field]


@pytest.mark.parametrize("region", [
    "us-east-1", "eu-central-2", "ap-southeast-1", "us-gov-west-1", "cn-north-1", "cn-northwest-1",
    "us-isob-east-1", "eu-isoe-west-1", "eusc-de-east-1", "mx-central-1", "ap-southeast-7",
])
def test_aws_region_names_are_accepted(region: str) -> None:
    assert validate({"region": region})["region"] == region


def test_every_region_botocore_knows_is_accepted_with_its_partitions_layers() -> None:
    import boto3  # the plugin's own dependency

    session = boto3.session.Session()
    for partition in session.get_available_partitions():
        for region in session.get_available_regions("lambda", partition_name=partition):
            assert partition_of(region) == partition
            arn = layer(region=region, partition=partition)
            assert validate({"region": region, "layers": [arn]})["layers"] == [arn]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_supported_runtimes_are_accepted(runtime: str) -> None:
    assert validate({"runtime": runtime})["runtime"] == runtime


def test_deprecated_runtime_is_refused_with_the_reason() -> None:
    assert refused({"runtime": "python3.8"}) == [
        ("runtime", "'python3.8' is deprecated: Lambda no longer creates or updates functions on it")]


def test_five_layers_are_accepted_and_six_refused() -> None:
    five = [layer(name=f"layer-{n}") for n in range(5)]
    assert validate({"layers": five})["layers"] == five
    assert refused({"layers": [*five, layer(name="layer-5")]}) == [("layers", "must have at most 5 items")]


@pytest.mark.parametrize("account", ["1", "123456789", "123456789012", "000000000000"])
def test_account_ids_up_to_twelve_digits_are_accepted(account: str) -> None:
    arn = layer(account=account)
    assert validate({"layers": [arn]})["layers"] == [arn]


def test_layer_from_another_region_is_refused_naming_it() -> None:
    [(field, reason)] = refused({"region": "eu-west-1", "layers": [layer(region="eu-west-1"), COMMON_LAYER]})
    assert field == "layers[1]"
    assert "region 'us-east-1'" in reason


def test_two_versions_of_one_layer_are_refused() -> None:
    [(field, reason)] = refused({"layers": [layer(version=1), layer(name="other"), layer(version=2)]})
    assert field == "layers"
    assert reason.startswith("layers[0] and layers[2] are both versions of")


def test_same_name_in_another_account_is_another_layer() -> None:
    layers = [layer(account="111111111111"), layer(account="222222222222")]
    assert validate({"layers": layers})["layers"] == layers


@pytest.mark.parametrize("function", [
    "hodei-worker", "w", "f" * 64, "Hodei_Worker-2", "hodei-worker:live", "hodei-worker:7", "hodei-worker:$LATEST",
    function_arn(), function_arn(qualifier="live"), function_arn(qualifier="$LATEST"),
])
def test_function_names_and_arns_are_accepted(function: str) -> None:
    assert validate({"function_name": function})["function_name"] == function


def test_function_arn_must_be_in_the_provider_region_and_its_partition() -> None:
    arn = function_arn(region="cn-north-1", partition="aws-cn")
    assert validate({"region": "cn-north-1", "function_name": arn})["function_name"] == arn
    assert refused({"function_name": function_arn(region="eu-west-1")}) == [
        ("function_name", "is in region 'eu-west-1', but the provider's region is 'us-east-1'")]
    [(field, reason)] = refused({"region": "cn-north-1", "function_name": function_arn(region="cn-north-1")})
    assert field == "function_name" and "partition 'aws'" in reason


def test_function_arn_with_a_refused_region_names_only_the_region() -> None:
    assert refused_fields({"region": "mars-north-1", "function_name": function_arn()}) == ["region"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:4566", "https://lambda.us-east-1.amazonaws.com",
                                 "http://localhost:4566/", "https://proxy.example.com/aws", "http://[::1]:5000"])
def test_endpoint_urls_are_accepted(url: str) -> None:
    assert validate({"endpoint_url": url})["endpoint_url"] == url


def test_endpoint_url_with_a_password_is_refused_without_echoing_it() -> None:
    [(field, reason)] = refused({"endpoint_url": "https://AKIDEXAMPLE:hunter2@lambda.example.com:99999"})
    assert field == "endpoint_url"
    assert "hunter2" not in reason and "AKIDEXAMPLE" not in reason
    assert "user name or password" in reason


def test_profile_names_a_credentials_profile() -> None:
    assert validate({"profile": "hodei-prod"})["profile"] == "hodei-prod"
    assert refused({"profile": ""}) == [("profile", "must not be empty")]


def test_no_field_is_secret() -> None:
    # Credentials come from the AWS chain, never from the config, so nothing needs masking.
    from hodei_lambda import hodei_provider_types

    assert [t.secret_fields for t in hodei_provider_types()] == [()]


# -- properties -------------------------------------------------------------------------------

_directions = st.sampled_from(["central", "north", "south", "east", "west",
                               "northeast", "northwest", "southeast", "southwest"])
_geographies = st.sampled_from(["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx", "cn",
                                "us-gov", "us-iso", "us-isob", "us-isof", "eu-isoe", "eusc-de"])
regions = st.builds(lambda geo, direction, number: f"{geo}-{direction}-{number}",
                    _geographies, _directions, st.integers(min_value=1, max_value=99))


@st.composite
def layer_arns_in(draw: st.DrawFn, region: str) -> str:
    return layer(
        name=draw(st.from_regex(r"[A-Za-z0-9_-]{1,140}", fullmatch=True)),
        version=draw(st.integers(min_value=1, max_value=10**9)),
        region=region,
        account=draw(st.from_regex(r"[0-9]{1,12}", fullmatch=True)),
        partition=partition_of(region),
    )


@given(st.data())
def test_any_region_and_layer_arns_in_it_are_accepted(data: st.DataObject) -> None:
    region = data.draw(regions)
    arns = data.draw(st.lists(layer_arns_in(region), max_size=5,
                              unique_by=lambda arn: arn.rsplit(":", 1)[0]))
    assert validate({"region": region, "layers": arns}) == {**DEFAULTS, "region": region, "layers": arns}
