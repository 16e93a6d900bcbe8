"""Settings of the EMR launcher, read from ``conf/``.

* ``conf/emr/globals.yml``: region, buckets and prefixes (shared with the Kedro catalog);
* ``conf/base/spark.yml`` then ``conf/emr/spark.yml``: the Spark settings of the step;
* ``conf/emr/cluster.yml``: the cluster, its fleets, managed scaling and the price table.

Roles, network, security configuration, buckets and key are not configured here: they are the
outputs of the infrastructure stack (see :mod:`fruits_kedro.deploy.stack`).
Every mistake is reported as a :class:`ConfigError` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, get_args, get_origin, get_type_hints

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fruits_kedro.deploy.regions import EU_EEA_REGIONS, check_region, outside_eu_eea

if TYPE_CHECKING:
    from pathlib import Path

    from fruits_kedro.deploy.stack import StackOutputs

logger = logging.getLogger(__name__)

ENV = "emr"
BASE_ENV = "base"
GLOBALS_FILE = "globals.yml"
SPARK_FILE = "spark.yml"
CLUSTER_FILE = "cluster.yml"
ENV_WITH_DEFAULT = re.compile(r"\$\{oc\.env:\s*\w+\s*,(?P<default>[^${}]*)\}")
MARKETS = ("ON_DEMAND", "SPOT")
GLOBAL_KEYS = ("dataset_bucket", "results_bucket", "dataset_prefix", "results_prefix")
# What the stack's outputs give; refused in cluster.yml with a pointer to `stack`.
STACK_KEYS = (
    "service_role",
    "instance_profile",
    "security_configuration",
    "subnet_ids",
    "security_group_ids",
    "emr_managed_master_security_group",
    "emr_managed_slave_security_group",
    "service_access_security_group",
)
# What an EMR Studio Workspace needs on the cluster (`fruits-emr up --notebook`).
NOTEBOOK_APPLICATIONS = ("JupyterEnterpriseGateway", "Livy")

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file is missing or unreadable, or one of its keys is wrong."""


def config_error(where: str, key: str, reason: str) -> ConfigError:
    """The one way to word a configuration error: ``<file>: <key>: <reason>``."""
    return ConfigError(f"{where}: {key}: {reason}")


@dataclass(frozen=True)
class InstancePrice:
    """Size and hourly prices (USD) of one EC2 instance type."""

    vcpu: int
    on_demand_usd_per_h: float
    spot_usd_per_h: float
    emr_usd_per_h: float


@dataclass(frozen=True)
class Fleet:
    """One instance fleet: its market, target capacity (units) and instance types, preferred first."""

    market: str
    target_units: int
    instance_types: list[str]


@dataclass(frozen=True)
class Fleets:
    """The primary, core and task fleets."""

    primary: Fleet
    core: Fleet
    task: Fleet


@dataclass(frozen=True)
class ManagedScaling:
    """EMR managed scaling limits of the core and task fleets."""

    unit_type: str
    minimum_units: int
    maximum_units: int
    maximum_core_units: int
    maximum_on_demand_units: int | None = None


@dataclass(frozen=True)
class EstimateInputs:
    """Throughput and start-up time used by ``fruits-emr estimate``."""

    throughput_img_s_per_vcpu: float
    startup_minutes: float
    prices_region: str


@dataclass(frozen=True)
class ClusterSettings:
    """The content of ``conf/emr/cluster.yml``."""

    name: str
    release_label: str
    applications: list[str]
    region: str
    stack: str
    log_prefix: str
    artifacts_prefix: str
    metrics_key: str
    ebs_root_volume_gib: int
    ebs_volume_gib: int
    auto_termination_idle_timeout_s: int
    step_concurrency_level: int
    spot_timeout_minutes: int
    spot_allocation_strategy: str
    on_demand_allocation_strategy: str
    fleets: Fleets
    managed_scaling: ManagedScaling
    estimate: EstimateInputs
    prices: dict[str, InstancePrice]
    tags: dict[str, str] = field(default_factory=dict)
    allowed_regions: list[str] = field(default_factory=lambda: list(EU_EEA_REGIONS))
    notebook_applications: list[str] = field(default_factory=lambda: list(NOTEBOOK_APPLICATIONS))


@dataclass(frozen=True)
class DeploySettings:
    """Everything the launcher needs, with the region already checked.

    ``stack`` is set (and the buckets are the stack's) once its outputs are read.
    """

    region: str
    dataset_bucket: str
    results_bucket: str
    dataset_prefix: str
    results_prefix: str
    cluster: ClusterSettings
    spark_conf: dict[str, Any]
    stack: StackOutputs | None = None


def load_settings(conf_dir: Path, region: str | None = None) -> DeploySettings:
    """Read ``conf_dir`` and check the region (``region`` overrides the configured one).

    Raises:
        ConfigError: A file or key is missing or wrong.
        RegionNotAllowedError: The region is not one of ``allowed_regions`` (GDPR).
    """
    globals_path = conf_dir / ENV / GLOBALS_FILE
    cluster_path = conf_dir / ENV / CLUSTER_FILE
    globals_ = load_yaml(globals_path)
    cluster = parse_cluster(load_yaml(cluster_path), str(cluster_path))
    chosen = region or _configured_region(globals_, cluster, str(globals_path), str(cluster_path))
    check_region(chosen, cluster.allowed_regions)
    values = {key: _required_str(globals_, key, str(globals_path)) for key in GLOBAL_KEYS}
    return DeploySettings(
        region=chosen,
        dataset_bucket=values["dataset_bucket"],
        results_bucket=values["results_bucket"],
        dataset_prefix=values["dataset_prefix"],
        results_prefix=values["results_prefix"],
        cluster=cluster,
        spark_conf=load_spark_conf(conf_dir),
    )


def load_spark_conf(conf_dir: Path) -> dict[str, Any]:
    """``conf/base/spark.yml`` updated by ``conf/emr/spark.yml``, as the cluster must see it.

    This machine's environment is not the cluster's: ``${oc.env:NAME,default}`` takes its
    default, and a setting without a value there (empty, or another interpolation such as
    ``${globals:...}``) is left to the project's hook, which reads spark.yml on the cluster.
    """
    merged = load_yaml(conf_dir / BASE_ENV / SPARK_FILE, resolve=False)
    merged |= load_yaml(conf_dir / ENV / SPARK_FILE, resolve=False)
    values = {key: _cluster_value(value) for key, value in merged.items()}
    left = sorted(key for key, value in values.items() if value is None)
    if left:
        logger.debug("Spark settings left to the cluster's spark.yml: %s", left)
    return {key: value for key, value in values.items() if value is not None}


def _cluster_value(value: Any) -> Any:
    """``value`` with an ``oc.env`` interpolation replaced by its default; ``None`` if unknown."""
    text = str(value)
    if "${" not in text:
        return value
    match = ENV_WITH_DEFAULT.fullmatch(text.strip())
    default = match["default"].strip().strip("'\"") if match else ""
    return default or None


def load_yaml(path: Path, *, resolve: bool = True) -> dict[str, Any]:
    """A YAML mapping, its ``${key}`` interpolations resolved unless ``resolve`` is false."""
    try:
        content = OmegaConf.to_container(OmegaConf.load(path), resolve=resolve)
    except (OSError, yaml.YAMLError, OmegaConfBaseException) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping of keys, got {type(content).__name__}")
    return {str(key): value for key, value in content.items()}


def parse_cluster(raw: dict[str, Any], where: str) -> ClusterSettings:
    """The typed cluster settings, checked for consistency."""
    for key in STACK_KEYS:
        if key in raw:
            raise config_error(
                where, key, "comes from the outputs of the stack named by `stack`, not this file"
            )
    cluster = _build(ClusterSettings, raw, where, "")
    _check_regions(cluster, where)
    _check_cluster(cluster, where)
    return cluster


def _check_regions(cluster: ClusterSettings, where: str) -> None:
    """``allowed_regions`` narrows the EU/EEA regions of the launcher, never widens them."""
    refused = outside_eu_eea(cluster.allowed_regions)
    if refused:
        index, name = refused[0]
        raise config_error(
            where,
            f"allowed_regions[{index}]",
            f"{name!r} is refused: GDPR, this list may only narrow the EU/EEA regions of the "
            f"launcher ({', '.join(EU_EEA_REGIONS)}), never widen them",
        )
    if not cluster.allowed_regions:
        raise config_error(where, "allowed_regions", "at least one EU/EEA region is needed")


def _configured_region(
    globals_: dict[str, Any], cluster: ClusterSettings, globals_path: str, cluster_path: str
) -> str:
    data_region = globals_.get("region")
    if data_region is not None and data_region != cluster.region:
        raise config_error(
            globals_path,
            "region",
            f"{data_region!r} differs from {cluster.region!r} in {cluster_path}; the cluster "
            "runs where the data is: make them equal, or choose one with --region",
        )
    return cluster.region


def _required_str(mapping: dict[str, Any], key: str, where: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value:
        raise config_error(where, key, f"a non-empty string is required, got {value!r}")
    return value


def _build(cls: type[T], raw: Any, where: str, prefix: str) -> T:
    """An instance of the dataclass ``cls`` from the mapping ``raw``; ``prefix`` names its key."""
    if not isinstance(raw, dict):
        raise config_error(where, prefix or "<top>", f"expected a mapping, got {raw!r}")
    known = {item.name: item for item in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(known))
    missing = [name for name, item in known.items() if name not in raw and _is_required(item)]
    if unknown or missing:
        reason = f"unknown key(s) {unknown}" if unknown else f"missing key(s) {missing}"
        raise config_error(where, prefix or "<top>", reason)
    hints = get_type_hints(cls)
    values = {name: _convert(hints[name], raw[name], where, prefix + name) for name in raw}
    return cls(**values)


def _is_required(item: dataclasses.Field[Any]) -> bool:
    return item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING


def _convert(hint: Any, value: Any, where: str, key: str) -> Any:
    """``value`` checked against the type ``hint`` (nested dataclasses are built)."""
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where, f"{key}.")  # type: ignore[arg-type]
    origin, args = get_origin(hint), get_args(hint)
    if origin in (dict, list) and not isinstance(value, origin):
        kind = "mapping" if origin is dict else "list"
        raise config_error(where, key, f"expected a {kind}, got {value!r}")
    if origin is dict:
        return {str(k): _convert(args[1], v, where, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        return [_convert(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value)]
    expected = [arg for arg in args if arg is not type(None)] if origin else [hint]
    if value is None and type(None) in args:
        return value
    if all(isinstance(kind, type) for kind in expected) and not _accepts(expected, value):
        names = " or ".join(kind.__name__ for kind in expected)
        raise config_error(where, key, f"expected {names}, got {value!r}")
    return value


def _accepts(expected: list[type], value: Any) -> bool:
    """``value`` is one of the ``expected`` types (an int is a float; a bool is no number)."""
    if isinstance(value, bool) and bool not in expected:
        return False
    kinds = tuple(expected) + ((int,) if float in expected else ())
    return isinstance(value, kinds)


def _check_cluster(cluster: ClusterSettings, where: str) -> None:
    """Cross-key rules: known markets, priced instance types, coherent scaling limits."""
    for role in ("primary", "core", "task"):
        _check_fleet(getattr(cluster.fleets, role), f"fleets.{role}", cluster, where)
    if cluster.fleets.primary.target_units != 1:
        raise config_error(where, "fleets.primary.target_units", "the primary fleet has 1 unit")
    limits = cluster.managed_scaling
    if not limits.minimum_units <= limits.maximum_units:
        raise config_error(where, "managed_scaling", "minimum_units > maximum_units")
    if limits.maximum_core_units > limits.maximum_units:
        raise config_error(where, "managed_scaling", "maximum_core_units > maximum_units")


def _check_fleet(fleet: Fleet, key: str, cluster: ClusterSettings, where: str) -> None:
    if fleet.market not in MARKETS:
        raise config_error(where, f"{key}.market", f"{fleet.market!r} is not one of {MARKETS}")
    if not fleet.instance_types:
        raise config_error(where, f"{key}.instance_types", "at least one type is needed")
    for name in fleet.instance_types:
        if name not in cluster.prices:
            raise config_error(where, f"{key}.instance_types", f"{name} not in prices")


def with_stack(settings: DeploySettings, outputs: StackOutputs) -> DeploySettings:
    """``settings`` launched on the stack: its buckets win over those of ``globals.yml``."""
    for kind in ("dataset", "results"):
        configured, actual = getattr(settings, f"{kind}_bucket"), getattr(outputs, f"{kind}_bucket")
        if configured != actual:
            logger.info("%s bucket: %s (stack %s), not %s", kind, actual, outputs.name, configured)
    return dataclasses.replace(
        settings,
        dataset_bucket=outputs.dataset_bucket,
        results_bucket=outputs.results_bucket,
        stack=outputs,
    )
