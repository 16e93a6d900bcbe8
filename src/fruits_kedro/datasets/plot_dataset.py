"""``PlotDataset``: a Matplotlib figure saved as PNG, loaded back as the PNG's bytes."""

from __future__ import annotations

from kedro.io.core import get_filepath_str
from kedro_datasets.matplotlib import MatplotlibDataset


class PlotDataset(MatplotlibDataset):
    """Saves a figure like ``matplotlib.MatplotlibDataset``; ``load`` returns the PNG bytes,
    so that a report or a notebook shows the saved picture instead of drawing it again.

    Example:
        .. code-block:: yaml

            pca_variance_plot:
              type: fruits_kedro.datasets.PlotDataset
              filepath: data/08_reporting/pca_variance.png
    """

    def load(self) -> bytes:  # type: ignore[override]
        """The saved PNG file's bytes."""
        path = get_filepath_str(self._get_load_path(), self._protocol)
        with self._fs.open(path, mode="rb") as png:
            return png.read()
