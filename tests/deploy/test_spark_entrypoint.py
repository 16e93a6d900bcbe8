"""The spark-submit entry point finds the packaged logging configuration."""

from __future__ import annotations

import tarfile

from fruits_kedro.deploy.spark_entrypoint import logging_config


def test_logging_config_comes_out_of_the_conf_archive(tmp_path):
    conf = tmp_path / "conf"
    (conf / "base").mkdir(parents=True)
    (conf / "logging.yml").write_text("version: 1\n")
    (conf / "base" / "logging.yml").write_text("not this one\n")
    archive = tmp_path / "conf-fruits_kedro.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(conf, arcname="conf")
    workdir = tmp_path / "work"
    workdir.mkdir()

    found = logging_config(["--env", "emr", "--conf-source", str(archive)], workdir)

    assert found == workdir / "logging.yml"
    assert found.read_text() == "version: 1\n"
    assert logging_config(["--conf-source", str(conf)], workdir) == conf / "logging.yml"
    assert logging_config(["--env", "emr"], workdir) is None
