"""Ingestion: image files to a labelled Spark DataFrame."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
