"""The GDPR guard: the only AWS regions the launcher ever uses are in the EU/EEA.

The list is fixed here, in code. ``allowed_regions`` of ``conf/emr/cluster.yml`` may narrow it,
never widen it: eu-west-2 (London, UK) and eu-central-2 (Zurich, CH) are outside the EU/EEA.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

EU_EEA_REGIONS: tuple[str, ...] = (
    "eu-west-1",  # Ireland
    "eu-west-3",  # Paris
    "eu-central-1",  # Frankfurt
    "eu-north-1",  # Stockholm
    "eu-south-1",  # Milan
    "eu-south-2",  # Spain
)


class RegionNotAllowedError(ValueError):
    """The AWS region is outside the EU/EEA, or not one of ``allowed_regions``."""


def check_region(region: str, allowed: Iterable[str] = EU_EEA_REGIONS) -> None:
    """Refuse any region outside the EU/EEA or outside ``allowed``, before any AWS call.

    Raises:
        RegionNotAllowedError: ``region`` is not allowed.
    """
    accepted = [name for name in allowed if name in EU_EEA_REGIONS]
    if region not in accepted:
        raise RegionNotAllowedError(
            f"region {region!r} is refused: GDPR, the images and their features stay in the "
            f"EU/EEA; allowed regions (conf/emr/cluster.yml allowed_regions, within the EU/EEA "
            f"regions of the launcher): {', '.join(accepted)}"
        )


def outside_eu_eea(regions: Iterable[str]) -> list[tuple[int, str]]:
    """``(index, region)`` of every region of ``regions`` that is not an EU/EEA region."""
    return [(index, name) for index, name in enumerate(regions) if name not in EU_EEA_REGIONS]
