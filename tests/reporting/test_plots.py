"""The run's own plots: wall time per node, the embedding's throughput over the run."""

from __future__ import annotations

from fruits_kedro.reporting.plots import node_times_figure, stage_of, throughput_figure

TIMINGS = {
    "ingestion.label_images": 0.5,
    "embedding.embed_images": 12.0,
    "reduction.fit_pca": 3.0,
    "classification.sweep_k": 5.0,
}


def test_node_times_show_every_node_longest_on_top_by_stage():
    fig = node_times_figure(TIMINGS)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == "embedding.embed_images"  # the top bar
    assert sorted(labels) == sorted(TIMINGS)
    widths = sorted(p.get_width() for p in ax.patches if p.get_width() > 0)
    assert widths == sorted(TIMINGS.values())
    legend = ax.get_legend()
    stages = [t.get_text() for t in legend.get_texts()]
    assert stages == ["classification", "embedding", "ingestion", "reduction"]
    legend_colours = [tuple(h.get_facecolor()) for h in legend.legend_handles]
    embed_bar = next(p for p in ax.patches if p.get_width() == TIMINGS["embedding.embed_images"])
    assert legend_colours[1] == tuple(embed_bar.get_facecolor())
    assert len(set(legend_colours)) == 4


def test_throughput_draws_the_images_written_over_the_run():
    record = {"started_s": 10.0, "unit": "images", "samples": [(0.0, 0), (4.0, 40), (8.0, 80)]}
    fig = throughput_figure(record, "embedding.embed_images")
    written, rate = fig.axes
    x, y = written.get_lines()[0].get_data()
    assert list(x) == [10.0, 14.0, 18.0]
    assert list(y) == [0, 40, 80]
    assert list(rate.get_lines()[0].get_ydata()) == [10.0, 10.0]
    assert "80 images in 8 s (10.0 images/s)" in written.get_title()


def test_throughput_says_when_nothing_was_recorded():
    fig = throughput_figure(None, "embedding.embed_images")
    assert "no progress in images" in fig.axes[0].texts[0].get_text()


def test_stage_of():
    assert [stage_of(n) for n in ("embedding.embed_images", "plain")] == ["embedding", "plain"]
