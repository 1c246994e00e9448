"""AWS region names and Lambda layer version ARNs, checked without asking AWS.

Each ``check_*`` function returns its argument or raises ``ValueError`` with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Every AWS region is <geography>[-<partition flavour>]-<compass direction>-<number>: us-east-1,
# us-gov-west-1, us-isob-east-1, eu-isoe-west-1, eusc-de-east-1, cn-northwest-1. Listing the
# directions (rather than any word, as botocore does) catches typos such as "us-eats-1".
_DIRECTIONS = "central|north|south|east|west|northeast|northwest|southeast|southwest"
_REGION = rf"(?:eusc-)?[a-z]{{2}}(?:-gov|-iso[a-z]?)?-(?:{_DIRECTIONS})-[1-9][0-9]?"
_REGION_RE = re.compile(_REGION)

# The partition an ARN must name for a region, by region prefix (botocore's partitions.json).
_PARTITIONS = (
    ("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-iso-", "aws-iso"), ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"), ("eu-isoe-", "aws-iso-e"), ("eusc-", "aws-eusc"),
)

# AWS account ids have 12 digits, but the product spec's own example has 9 and must validate:
# accept 1 to 12, which still refuses a value that can never be an account id.
_LAYER_VERSION_ARN_RE = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{1,12})"
    r":layer:(?P<name>[A-Za-z0-9_-]{1,140}):(?P<version>[1-9][0-9]*)"
)
_LAYER_VERSION_ARN_SHAPE = "arn:aws:lambda:<region>:<account id>:layer:<name>:<version>"


@dataclass(frozen=True)
class LayerVersionArn:
    partition: str
    region: str
    account: str
    name: str
    version: int

    @property
    def layer(self) -> str:
        """The layer itself, whatever its version."""
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:layer:{self.name}"


def check_region(region: str) -> str:
    if not _REGION_RE.fullmatch(region):
        raise ValueError(f"must be an AWS region name such as 'us-east-1' or 'eu-central-2', got {region!r}")
    return region


def partition_of(region: str) -> str:
    """``aws``, ``aws-cn``, ``aws-us-gov``...: the partition whose ARNs name ``region``."""
    return next((partition for prefix, partition in _PARTITIONS if region.startswith(prefix)), "aws")


def parse_layer_version_arn(arn: str) -> LayerVersionArn:
    match = _LAYER_VERSION_ARN_RE.fullmatch(arn)
    if match is None:
        raise ValueError(f"must be a layer version ARN ({_LAYER_VERSION_ARN_SHAPE}), got {arn!r}")
    region = match["region"]
    if not _REGION_RE.fullmatch(region):
        raise ValueError(f"names {region!r}, which is not an AWS region name, in {arn!r}")
    if match["partition"] != partition_of(region):
        raise ValueError(f"names partition {match['partition']!r}, but region {region!r} is in "
                         f"{partition_of(region)!r}, got {arn!r}")
    return LayerVersionArn(match["partition"], region, match["account"], match["name"], int(match["version"]))
