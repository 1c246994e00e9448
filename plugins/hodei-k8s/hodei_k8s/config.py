"""The ``kubernetes`` provider's config: which cluster and namespace, and how worker pods are placed."""

from __future__ import annotations

from typing import Annotated, Literal

from hodei import NonEmptyStr, ProviderConfigModel, StrictModel
from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from hodei_k8s.names import check_dns1123_label, check_dns1123_subdomain, check_label_key, check_label_value

TYPE = "kubernetes"

INT64_MAX = 2**63 - 1


def _check_path(path: str) -> str:
    if "\0" in path:
        raise ValueError("must not contain a NUL character")
    return path


def _check_no_white_space(image: str) -> str:
    if any(char.isspace() for char in image):
        raise ValueError(f"must not contain white space, got {image!r}")
    return image


Namespace = Annotated[str, AfterValidator(check_dns1123_label)]
ServiceAccountName = Annotated[str, AfterValidator(check_dns1123_subdomain)]
LabelKey = Annotated[str, AfterValidator(check_label_key)]
LabelValue = Annotated[str, AfterValidator(check_label_value)]
ContainerImage = Annotated[NonEmptyStr, AfterValidator(_check_no_white_space)]
KubeconfigPath = Annotated[NonEmptyStr, AfterValidator(_check_path)]


class Toleration(StrictModel):
    """One pod toleration, with the Kubernetes API's field names and its rules (ValidateTolerations).

    Fields are declared in the order their checks depend on each other: each cross-field check
    sits on the later field, so a refusal names the field that has to change.
    """

    key: str = ""
    """A taint key (label-key syntax); empty matches every key and then needs ``operator: Exists``."""

    operator: Literal["Exists", "Equal"] = Field("Equal", validate_default=True)
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """``None`` matches every effect."""

    # Kubernetes' own spelling, so a toleration copied from a pod manifest validates as it is.
    # Kubernetes treats a negative value as 0 (evict at once); refused here as a likely mistake.
    tolerationSeconds: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None  # noqa: N815

    @field_validator("key")
    @classmethod
    def _key_is_a_label_key(cls, key: str) -> str:
        return check_label_key(key) if key else key

    @field_validator("operator")
    @classmethod
    def _empty_key_needs_exists(cls, operator: str, info: ValidationInfo) -> str:
        if info.data.get("key") == "" and operator != "Exists":
            raise ValueError("must be 'Exists' when key is empty (an empty key matches every taint)")
        return operator

    @field_validator("value")
    @classmethod
    def _value_fits_operator(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("operator") == "Exists":
            if value:
                raise ValueError(f"must be empty when operator is 'Exists', got {value!r}")
            return value
        return check_label_value(value)

    @field_validator("tolerationSeconds")
    @classmethod
    def _seconds_only_for_no_execute(cls, seconds: int | None, info: ValidationInfo) -> int | None:
        effect = info.data.get("effect", "NoExecute")  # a bad effect is reported on its own
        if seconds is not None and effect != "NoExecute":
            given = f"effect {effect!r}" if effect else "no effect"
            raise ValueError(f"is allowed only with effect 'NoExecute', got {given}")
        return seconds


class KubernetesConfig(ProviderConfigModel):
    """One namespace of one cluster; each worker is a pod in it, run as ``service_account``."""

    type: Literal["kubernetes"] = TYPE
    kubeconfig_path: KubeconfigPath | None = None
    """``None``: Hodei runs in the cluster and uses its pod's service account."""

    # kubectl's defaults, so a config that names none means what `kubectl` would.
    namespace: Namespace = "default"
    service_account: ServiceAccountName = "default"
    default_image: ContainerImage = "hodei-jobs-worker:latest"
    node_selector: dict[LabelKey, LabelValue] = {}
    tolerations: list[Toleration] = []
