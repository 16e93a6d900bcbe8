"""Reporting pipeline: the one page a data scientist opens after a run."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
