"""Time and cost estimate of one ``fruits-emr run``: a pure function of ``conf/emr/cluster.yml``.

Wall time = start-up + images / (throughput per vCPU x worker vCPUs at the managed-scaling
maximum). Cost = that time x (primary on-demand + core and task Spot + EMR uplift of each node).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fruits_kedro.deploy.config import CLUSTER_FILE, config_error

if TYPE_CHECKING:
    from fruits_kedro.deploy.config import ClusterSettings, InstancePrice

MINUTES_PER_HOUR = 60.0
SECONDS_PER_MINUTE = 60.0
SPOT = "SPOT"


@dataclass(frozen=True)
class Node:
    """``count`` instances of one type, in one role, billed at ``market`` prices."""

    role: str
    instance_type: str
    count: int
    market: str
    price: InstancePrice

    def ec2_usd_per_h(self, *, on_demand: bool = False) -> float:
        """EC2 price of one instance in its market (on-demand when ``on_demand``)."""
        if on_demand or self.market != SPOT:
            return self.price.on_demand_usd_per_h
        return self.price.spot_usd_per_h

    def usd_per_h(self, *, on_demand: bool = False) -> float:
        """EC2 plus EMR uplift, for all ``count`` instances."""
        return self.count * (self.ec2_usd_per_h(on_demand=on_demand) + self.price.emr_usd_per_h)


def nodes_at_max_scale(cluster: ClusterSettings) -> list[Node]:
    """The primary, and the core and task nodes at the managed-scaling maximum (preferred types)."""
    limits, fleets, prices = cluster.managed_scaling, cluster.fleets, cluster.prices
    primary = fleets.primary.instance_types[0]
    nodes = [Node("primary", primary, 1, fleets.primary.market, prices[primary])]
    task_units = limits.maximum_units - limits.maximum_core_units
    for role, fleet, units in (
        ("core", fleets.core, limits.maximum_core_units),
        ("task", fleets.task, task_units),
    ):
        name = fleet.instance_types[0]
        count = math.ceil(units / prices[name].vcpu)
        if count:
            nodes.append(Node(role, name, count, fleet.market, prices[name]))
    return nodes


def estimate(images: int, cluster: ClusterSettings) -> dict[str, Any]:
    """Expected wall time and cost of processing ``images`` images, with the inputs used."""
    nodes = nodes_at_max_scale(cluster)
    workers = [node for node in nodes if node.role != "primary"]
    vcpus = sum(node.count * node.price.vcpu for node in workers)
    if vcpus <= 0:
        raise config_error(CLUSTER_FILE, "managed_scaling", "allows no core or task vCPU")
    inputs = cluster.estimate
    processing_min = images / (inputs.throughput_img_s_per_vcpu * vcpus) / SECONDS_PER_MINUTE
    wall_h = (inputs.startup_minutes + processing_min) / MINUTES_PER_HOUR
    spot_rate = sum(node.usd_per_h() for node in nodes)
    on_demand_rate = sum(node.usd_per_h(on_demand=True) for node in nodes)
    return {
        "estimate": {
            "images": images,
            "wall_time_minutes": round(wall_h * MINUTES_PER_HOUR, 3),
            "processing_minutes": round(processing_min, 3),
            "cost_usd": round(wall_h * spot_rate, 4),
            "cost_usd_if_spot_falls_back_to_on_demand": round(wall_h * on_demand_rate, 4),
            "usd_per_hour": round(spot_rate, 4),
        },
        "inputs": _inputs(cluster, nodes, vcpus),
        "assumptions": ASSUMPTIONS,
    }


def _inputs(cluster: ClusterSettings, nodes: list[Node], vcpus: int) -> dict[str, Any]:
    return {
        "throughput_img_s_per_vcpu": cluster.estimate.throughput_img_s_per_vcpu,
        "startup_minutes": cluster.estimate.startup_minutes,
        "worker_vcpus": vcpus,
        "prices_region": cluster.estimate.prices_region,
        "nodes": [
            {
                "role": node.role,
                "instance_type": node.instance_type,
                "count": node.count,
                "market": node.market,
                "ec2_usd_per_h": node.ec2_usd_per_h(),
                "emr_usd_per_h": node.price.emr_usd_per_h,
            }
            for node in nodes
        ],
    }


ASSUMPTIONS = [
    "This is an estimate, not a quote: prices come from the table of conf/emr/cluster.yml.",
    "Core and task fleets run at the managed-scaling maximum for the whole run, with their "
    "preferred (first) instance type: an upper bound, scaling starts lower.",
    "Workers are billed during start-up (boot + bootstrap) too; EMR bills per second.",
    "Spot prices are typical values; if Spot capacity is missing the fleets switch to "
    "on-demand (see cost_usd_if_spot_falls_back_to_on_demand).",
    "Throughput per vCPU is scaled linearly from the benchmark; reading S3 and writing "
    "results are assumed to hide behind inference.",
    "Not counted: EBS volumes, S3 requests and storage, CloudWatch; data transfer stays in "
    "the region (free).",
]
