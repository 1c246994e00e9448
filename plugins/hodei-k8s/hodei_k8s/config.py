"""The ``kubernetes`` provider's config: which cluster and namespace, and how worker pods are placed."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from hodei import CpuQuantity, ImageList, MemoryQuantity, NonEmptyStr, ProviderConfigModel, StrictModel
from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from hodei_k8s.names import check_dns1123_label, check_dns1123_subdomain, check_label_key, check_label_value

TYPE: Final = "kubernetes"

INT64_MAX = 2**63 - 1
GIB = 2**30
# The API server keeps CPU to the millicore: a smaller non-zero amount would be rounded up to 1m.
MIN_CPU = 0.001


def _check_path(path: str) -> str:
    if "\0" in path:
        raise ValueError("must not contain a NUL character")
    return path


def _check_no_white_space(image: str) -> str:
    if any(char.isspace() for char in image):
        raise ValueError(f"must not contain white space, got {image!r}")
    return image


def _check_millicores(cores: float) -> float:
    if cores < MIN_CPU:
        raise ValueError(f"must be at least 1m (0.001 cores), Kubernetes' CPU resolution, got {cores}")
    millicores = cores * 1000
    if abs(millicores - round(millicores)) > 1e-6:
        raise ValueError(f"must be a whole number of millicores (Kubernetes' CPU resolution), got {cores}")
    return cores


def _check_extended_resource_name(name: str) -> str:
    check_label_key(name)
    prefix = name.partition("/")[0] if "/" in name else ""
    if not prefix:
        raise ValueError(f"must be a domain-prefixed extended resource name like 'nvidia.com/gpu', got {name!r}")
    if prefix == "kubernetes.io" or prefix.endswith(".kubernetes.io"):
        raise ValueError(f"must not use the reserved kubernetes.io domain, got {name!r}")
    return name


Namespace = Annotated[str, AfterValidator(check_dns1123_label)]
ServiceAccountName = Annotated[str, AfterValidator(check_dns1123_subdomain)]
SecretName = Annotated[str, AfterValidator(check_dns1123_subdomain)]
ExtendedResourceName = Annotated[str, AfterValidator(_check_extended_resource_name)]
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
    tolerationSeconds: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None

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


class WorkerResources(StrictModel):
    """What a worker pod requests (and is limited to) when its job does not say."""

    cpu: Annotated[CpuQuantity, AfterValidator(_check_millicores)] = 1.0
    """Cores (``2``, ``0.5``, ``"500m"``); at least ``1m``."""

    memory: Annotated[MemoryQuantity, Field(ge=1)] = GIB
    """Bytes or a quantity (``"4Gi"``)."""


class KubernetesConfig(ProviderConfigModel):
    """One namespace of one cluster; each worker is a pod in it, run as ``service_account``."""

    type: Literal["kubernetes"] = TYPE
    kubeconfig_path: KubeconfigPath | None = None
    """``None``: Hodei runs in the cluster and uses its pod's service account."""

    kubeconfig_context: NonEmptyStr | None = None
    """A context of ``kubeconfig_path``; ``None`` means its ``current-context``. Needs ``kubeconfig_path``."""

    # kubectl's defaults, so a config that names none means what `kubectl` would.
    namespace: Namespace = "default"
    service_account: ServiceAccountName = "default"
    default_image: ContainerImage = "hodei-jobs-worker:latest"
    allowed_images: ImageList | None = None
    """Images a job may ask for: references or glob patterns (``registry.example.com/jobs/*``);
    ``None``: only ``default_image``."""
    node_selector: dict[LabelKey, LabelValue] = {}
    tolerations: list[Toleration] = []
    image_pull_secrets: list[SecretName] = []
    """Secrets in ``namespace`` that hold registry credentials for ``default_image``."""

    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    """``None``: Kubernetes' default (``Always`` for ``:latest`` or no tag, else ``IfNotPresent``)."""

    default_resources: WorkerResources = WorkerResources()
    gpu_resource: ExtendedResourceName = "nvidia.com/gpu"
    """The extended resource a job's GPUs are requested as (``amd.com/gpu``, ``gpu.intel.com/i915``)."""

    @field_validator("kubeconfig_context")
    @classmethod
    def _context_needs_a_kubeconfig(cls, context: str | None, info: ValidationInfo) -> str | None:
        # A missing key means kubeconfig_path was itself refused; that is reported on its own.
        if context is not None and "kubeconfig_path" in info.data and info.data["kubeconfig_path"] is None:
            raise ValueError("needs kubeconfig_path: in-cluster configuration has no contexts")
        return context
