"""Project settings: hooks, configuration patterns and the default environment."""

import warnings

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

from fruits_kedro.hooks import SparkHooks
from fruits_kedro.observe.progress import ProgressHooks
from fruits_kedro.observe.run_metrics import RunMetricsHooks

# Kedro 1.7's config loader calls OmegaConf.register_new_resolver, which omegaconf 2.4 deprecates
# (omegaconf 2.3 does not warn, but its antlr runtime has no wheels for the offline nodes).
warnings.filterwarnings("ignore", r"register_new_resolver\(\) is deprecated", UserWarning)

PROGRESS = ProgressHooks()
# The end-of-run metrics and report include the progress samples.
HOOKS = (SparkHooks(), RunMetricsHooks(progress=PROGRESS), PROGRESS)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "spark": ["spark*", "spark*/**"],
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    },
    # `${oc.env:NAME,default}` in spark.yml, e.g. for the S3A jars of a local run.
    "custom_resolvers": {"oc.env": oc.env},
}
