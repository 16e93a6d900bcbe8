"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Register ``ingestion``, ``preprocessing``, ``embedding``, ``reduction``,
    ``classification`` and ``reporting``.

    Returns:
        The pipelines by name; ``__default__`` runs them all.
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
