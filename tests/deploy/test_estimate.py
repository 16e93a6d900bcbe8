"""``fruits-emr estimate``: the arithmetic, checked by hand on a small price table."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fruits_kedro.deploy.cli import main
from fruits_kedro.deploy.config import EstimateInputs, InstancePrice, ManagedScaling
from fruits_kedro.deploy.estimate import estimate
from tests.deploy.conftest import CONF_DIR


@pytest.fixture
def cluster(settings):
    """The project's cluster with round numbers: 1 primary, 2 core + 4 task 8-vCPU nodes."""
    prices = {
        "m7g.xlarge": InstancePrice(
            4, on_demand_usd_per_h=0.20, spot_usd_per_h=0.08, emr_usd_per_h=0.05
        ),
        "m7g.2xlarge": InstancePrice(
            8, on_demand_usd_per_h=0.40, spot_usd_per_h=0.15, emr_usd_per_h=0.10
        ),
        "m6g.2xlarge": InstancePrice(
            8, on_demand_usd_per_h=0.35, spot_usd_per_h=0.14, emr_usd_per_h=0.09
        ),
        "m6gd.2xlarge": InstancePrice(
            8, on_demand_usd_per_h=0.41, spot_usd_per_h=0.15, emr_usd_per_h=0.09
        ),
    }
    return dataclasses.replace(
        settings.cluster,
        prices=prices,
        managed_scaling=ManagedScaling("InstanceFleetUnits", 16, 48, 16, 0),
        estimate=EstimateInputs(
            throughput_img_s_per_vcpu=50, startup_minutes=12, prices_region="eu-west-1"
        ),
    )


def test_90000_images(cluster):
    result = estimate(90_000, cluster)["estimate"]

    # 48 worker vCPUs x 50 img/s = 2400 img/s: 37.5 s = 0.625 min, plus 12 min of start-up.
    assert result["processing_minutes"] == pytest.approx(0.625, abs=1e-3)
    assert result["wall_time_minutes"] == pytest.approx(12.625, abs=1e-3)
    # Per hour: primary 0.20 + 0.05; 6 workers x (0.15 Spot + 0.10 EMR) = 1.50; total 1.75.
    assert result["usd_per_hour"] == pytest.approx(1.75)
    assert result["cost_usd"] == pytest.approx(1.75 * 12.625 / 60, abs=1e-4)
    # All on-demand: 0.25 + 6 x (0.40 + 0.10) = 3.25 per hour.
    assert result["cost_usd_if_spot_falls_back_to_on_demand"] == pytest.approx(
        3.25 * 12.625 / 60, abs=1e-4
    )


def test_inputs_and_assumptions_are_reported(cluster):
    result = estimate(90_000, cluster)

    assert result["inputs"]["worker_vcpus"] == 48
    roles = [(node["role"], node["count"], node["market"]) for node in result["inputs"]["nodes"]]
    assert roles == [("primary", 1, "ON_DEMAND"), ("core", 2, "SPOT"), ("task", 4, "SPOT")]
    assert any("estimate" in line for line in result["assumptions"])


def test_more_images_take_longer_and_cost_more(cluster):
    small, large = estimate(1_000, cluster)["estimate"], estimate(1_000_000, cluster)["estimate"]

    assert large["wall_time_minutes"] > small["wall_time_minutes"]
    assert large["cost_usd"] > small["cost_usd"]


def test_no_worker_is_refused(cluster):
    empty = dataclasses.replace(
        cluster, managed_scaling=ManagedScaling("InstanceFleetUnits", 0, 0, 0)
    )

    with pytest.raises(ValueError, match="no core or task vCPU"):
        estimate(10, empty)


def test_cli_estimate_prints_json_from_the_project_conf(capsys, settings):
    assert main(["--conf-dir", str(CONF_DIR), "estimate", "--images", "90000"]) == 0

    printed = json.loads(capsys.readouterr().out)
    expected = estimate(90_000, settings.cluster)
    assert printed == json.loads(json.dumps(expected))
    inputs = settings.cluster.estimate
    processing = (
        90_000 / (inputs.throughput_img_s_per_vcpu * printed["inputs"]["worker_vcpus"]) / 60
    )
    assert printed["estimate"]["wall_time_minutes"] == pytest.approx(
        inputs.startup_minutes + processing, abs=0.01
    )


def test_cli_estimate_refuses_a_non_positive_count(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["estimate", "--images", "0"])

    assert exited.value.code == 2
    assert "positive integer" in capsys.readouterr().err
