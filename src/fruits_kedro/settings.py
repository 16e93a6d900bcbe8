"""Project settings: hooks, configuration patterns and the default environment."""

from kedro.config import OmegaConfigLoader

from fruits_kedro.hooks import RunMetricsHooks, SparkHooks

HOOKS = (SparkHooks(), RunMetricsHooks())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "spark": ["spark*", "spark*/**"],
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    },
}
