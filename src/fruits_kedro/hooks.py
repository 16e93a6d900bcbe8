"""The one owner of the SparkSession: a hook that builds it from ``conf/<env>/spark.yml``."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from kedro.framework.hooks import hook_impl
from pyspark import SparkConf
from pyspark.sql import SparkSession

if TYPE_CHECKING:
    from collections.abc import Mapping

    from kedro.framework.context import KedroContext

logger = logging.getLogger(__name__)

# The standard variables boto3 and s3fs honour; Spark's S3A connector is given the same.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def s3_endpoint_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """S3A settings for an S3-compatible endpoint named in the environment, if any."""
    endpoint = next((environ[v] for v in ENDPOINT_VARIABLES if environ.get(v)), None)
    if endpoint is None:
        return {}
    return {
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.path.style.access": "true",
    }


class SparkHooks:
    """Builds the SparkSession from ``conf/<env>/spark.yml`` when the context is created."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Start (or join, under spark-submit) the session with the environment's settings."""
        settings = {k: str(v) for k, v in context.config_loader["spark"].items() if v != ""}
        for key, value in s3_endpoint_settings(os.environ).items():
            settings.setdefault(key, value)
        # Python workers must run this interpreter, which has the project's packages. A
        # session started in-process takes the workers' interpreter from the environment.
        settings.setdefault("spark.pyspark.python", sys.executable)
        os.environ.setdefault("PYSPARK_PYTHON", settings["spark.pyspark.python"])
        builder = SparkSession.builder.appName(settings.pop("spark.app.name", "fruits-kedro"))
        spark = builder.config(conf=SparkConf().setAll(list(settings.items()))).getOrCreate()
        spark.sparkContext.setLogLevel(settings.get("spark.log.level", "WARN"))
        logger.info(
            "Spark %s session %s on %s",
            spark.version,
            spark.sparkContext.appName,
            spark.sparkContext.master,
        )
