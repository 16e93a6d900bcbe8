"""Preprocessing: decode and validate every image, quarantine the bad ones."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
