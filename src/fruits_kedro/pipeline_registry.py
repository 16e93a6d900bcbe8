"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from fruits_kedro.pipelines import ingestion


def register_pipelines() -> dict[str, Pipeline]:
    """Register ``ingestion``, ``embedding``, ``reduction``, ``classification`` and ``export``.

    The image bytes are not persisted between ingestion and embedding (they are read once),
    so the ``embedding`` and ``export`` pipelines run the ingestion node too.

    Returns:
        The pipelines by name; ``__default__`` runs them all.
    """
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    for name in ("embedding", "export"):
        if name in pipelines:
            pipelines[name] = ingestion.create_pipeline() + pipelines[name]
    return pipelines
