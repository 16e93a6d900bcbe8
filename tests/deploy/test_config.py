"""Loading ``conf/emr/``: values, precedence, and errors that name the file and the key."""

from __future__ import annotations

import shutil

import pytest
import yaml

from fruits_kedro.deploy.config import ConfigError, load_settings
from fruits_kedro.deploy.regions import EU_EEA_REGIONS, RegionNotAllowedError
from tests.deploy.conftest import CONF_DIR


@pytest.fixture
def conf(tmp_path):
    """A copy of the project's ``conf/`` to break."""
    return shutil.copytree(CONF_DIR, tmp_path / "conf")


def edit_yaml(path, change):
    content = yaml.safe_load(path.read_text())
    change(content)
    path.write_text(yaml.safe_dump(content))


def test_the_project_conf_loads():
    settings = load_settings(CONF_DIR)

    assert settings.stack is None and settings.cluster.stack == "fruits-infra"
    assert settings.cluster.allowed_regions == list(EU_EEA_REGIONS)
    assert settings.region == "eu-west-1"
    assert settings.results_bucket == "fruits-results-bucket"
    assert settings.results_prefix == "fruits-kedro"
    assert settings.cluster.release_label == "emr-spark-8.1.0"
    assert settings.cluster.prices["m7g.2xlarge"].vcpu == 8
    assert settings.cluster.fleets.core.market == "SPOT"


def test_emr_spark_settings_override_base(conf):
    edit_yaml(conf / "base/spark.yml", lambda c: c.update({"spark.executor.memory": "1g"}))

    spark_conf = load_settings(conf).spark_conf

    assert spark_conf["spark.executor.memory"] == "6g"  # conf/emr/spark.yml
    assert spark_conf["spark.serializer"].endswith("KryoSerializer")  # conf/base/spark.yml


def test_this_machine_environment_does_not_reach_the_cluster(conf, monkeypatch):
    monkeypatch.setenv("PYSPARK_PYTHON", "/home/me/.venv/bin/python")
    monkeypatch.setenv("FRUITS_SPARK_PACKAGES", "org.example:from-my-laptop:1.0")
    spark = {
        "spark.pyspark.python": "${oc.env:PYSPARK_PYTHON,python3.11}",
        "spark.jars.packages": "${oc.env:FRUITS_SPARK_PACKAGES,''}",
        "spark.hadoop.fs.s3a.endpoint.region": "${globals:region}",
        "spark.executor.cores": 4,
    }
    edit_yaml(conf / "emr/spark.yml", lambda c: c.update(spark))

    spark_conf = load_settings(conf).spark_conf

    assert spark_conf["spark.pyspark.python"] == "python3.11"  # the default: the cluster's
    assert "spark.jars.packages" not in spark_conf  # empty by default
    assert "spark.hadoop.fs.s3a.endpoint.region" not in spark_conf  # for Kedro to resolve
    assert spark_conf["spark.executor.cores"] == 4


def test_region_option_wins_but_is_checked():
    assert load_settings(CONF_DIR, "eu-north-1").region == "eu-north-1"
    with pytest.raises(RegionNotAllowedError, match=r"'eu-west-2'.*GDPR"):
        load_settings(CONF_DIR, "eu-west-2")


@pytest.mark.parametrize("region", ["eu-west-2", "eu-central-2", "us-east-1"])
@pytest.mark.parametrize("chosen", [None, "given"])
def test_cluster_yml_cannot_widen_the_eu_eea_regions(conf, region, chosen):
    edit_yaml(conf / "emr/cluster.yml", lambda c: c["allowed_regions"].append(region))

    with pytest.raises(ConfigError) as caught:
        load_settings(conf, region if chosen else None)

    message = str(caught.value)
    assert message.startswith(f"{conf / 'emr/cluster.yml'}: allowed_regions[6]: '{region}'")
    assert "GDPR" in message and "never widen" in message


def test_cluster_yml_can_narrow_the_regions(conf):
    edit_yaml(conf / "emr/cluster.yml", lambda c: c.update(allowed_regions=["eu-west-1"]))

    assert load_settings(conf).cluster.allowed_regions == ["eu-west-1"]
    with pytest.raises(RegionNotAllowedError, match=r"'eu-north-1' is refused.*: eu-west-1$"):
        load_settings(conf, "eu-north-1")


def test_without_allowed_regions_the_eu_eea_list_applies(conf):
    edit_yaml(conf / "emr/cluster.yml", lambda c: c.pop("allowed_regions"))

    assert load_settings(conf, "eu-south-2").cluster.allowed_regions == list(EU_EEA_REGIONS)
    with pytest.raises(RegionNotAllowedError):
        load_settings(conf, "eu-central-2")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("subnet_ids", ["subnet-0a1b2c3d4e5f60001"]),
        ("security_group_ids", ["sg-0a1b2c3d4e5f60001"]),
        ("service_role", "EMR_DefaultRole"),
        ("security_configuration", "my-config"),
    ],
)
def test_what_the_stack_gives_is_refused_in_cluster_yml(conf, key, value):
    edit_yaml(conf / "emr/cluster.yml", lambda c: c.update({key: value}))

    with pytest.raises(ConfigError, match=rf"cluster.yml: {key}: comes from the outputs of the"):
        load_settings(conf)


def test_data_and_cluster_regions_must_agree(conf):
    edit_yaml(conf / "emr/globals.yml", lambda c: c.update(region="eu-west-3"))

    with pytest.raises(ConfigError, match=r"globals.yml: region: 'eu-west-3' differs"):
        load_settings(conf)


def test_a_misspelt_key_is_named_with_its_file(conf):
    edit_yaml(conf / "emr/cluster.yml", lambda c: c["managed_scaling"].update(maximum_unit=4))

    with pytest.raises(
        ConfigError, match=r"cluster.yml: managed_scaling\.: unknown key.*maximum_unit"
    ):
        load_settings(conf)


def test_a_missing_key_is_named(conf):
    edit_yaml(conf / "emr/cluster.yml", lambda c: c.pop("release_label"))

    with pytest.raises(ConfigError, match=r"cluster.yml: <top>: missing key.*release_label"):
        load_settings(conf)


def test_a_wrong_type_is_named(conf):
    edit_yaml(conf / "emr/cluster.yml", lambda c: c["fleets"]["core"].update(target_units="two"))

    with pytest.raises(ConfigError, match=r"fleets\.core\.target_units: expected int, got 'two'"):
        load_settings(conf)


def test_a_wrong_market_is_named(conf):
    edit_yaml(conf / "emr/cluster.yml", lambda c: c["fleets"]["core"].update(market="SPOTTY"))

    with pytest.raises(ConfigError, match=r"fleets\.core\.market: 'SPOTTY' is not one of"):
        load_settings(conf)


def test_a_mapping_where_a_list_is_expected_is_named(conf):
    edit_yaml(conf / "emr/cluster.yml", lambda c: c.update(applications="Spark"))

    with pytest.raises(ConfigError, match=r"applications: expected a list, got 'Spark'"):
        load_settings(conf)


def test_an_instance_type_without_price_is_refused(conf):
    edit_yaml(
        conf / "emr/cluster.yml",
        lambda c: c["fleets"]["task"]["instance_types"].append("m8g.2xlarge"),
    )

    with pytest.raises(
        ConfigError, match=r"fleets\.task\.instance_types: m8g.2xlarge not in prices"
    ):
        load_settings(conf)


def test_incoherent_scaling_limits_are_refused(conf):
    edit_yaml(conf / "emr/cluster.yml", lambda c: c["managed_scaling"].update(minimum_units=64))

    with pytest.raises(ConfigError, match="minimum_units > maximum_units"):
        load_settings(conf)


def test_an_empty_prefix_is_named(conf):
    edit_yaml(conf / "emr/globals.yml", lambda c: c.update(results_prefix=""))

    with pytest.raises(ConfigError, match=r"globals.yml: results_prefix: a non-empty string"):
        load_settings(conf)


def test_a_broken_interpolation_is_named(conf):
    edit_yaml(conf / "emr/globals.yml", lambda c: c.pop("results_bucket"))

    with pytest.raises(ConfigError, match=r"globals.yml: cannot be read.*results_bucket"):
        load_settings(conf)


def test_a_missing_file_is_named(conf):
    (conf / "emr/cluster.yml").unlink()

    with pytest.raises(ConfigError, match=r"cluster.yml: cannot be read"):
        load_settings(conf)


def test_interpolations_of_globals_are_resolved(conf):
    edit_yaml(conf / "emr/globals.yml", lambda c: c.update(results_prefix="${dataset_prefix}-out"))

    assert load_settings(conf).results_prefix == "fruits-360-out"
