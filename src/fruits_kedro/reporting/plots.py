"""Where the run's time went: wall time per node, and the embedding's throughput over the run.

Drawn when the run ends from the run's metrics (the hooks' timings and progress samples).
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import Patch

STAGE_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def stage_of(node: str) -> str:
    """A namespaced node's stage: ``embedding.embed_images`` -> ``embedding``."""
    return node.rpartition(".")[0] or node


def node_times_figure(timings: dict[str, float]) -> Figure:
    """One bar per node, longest on top, coloured by stage."""
    ordered = sorted(timings.items(), key=lambda item: (item[1], item[0]))
    stages = list(dict.fromkeys(stage_of(name) for name in sorted(timings)))
    colour = {s: STAGE_COLOURS[i % len(STAGE_COLOURS)] for i, s in enumerate(stages)}
    fig = Figure(figsize=(8, 0.3 * len(ordered) + 1.5))
    ax = fig.subplots()
    names = [name for name, _ in ordered]
    ax.barh(names, [s for _, s in ordered], color=[colour[stage_of(n)] for n in names])
    ax.set_xlabel("wall time (s)")
    ax.set_title(f"Where the time went: {sum(timings.values()):.0f} s in {len(timings)} nodes")
    if stages:
        ax.legend(handles=[Patch(color=colour[s], label=s) for s in stages], loc="lower right")
    fig.tight_layout()
    return fig


def throughput_figure(record: dict[str, Any] | None, node: str) -> Figure:
    """Images written over the run's time, and the images/s since the node started."""
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    samples = (record or {}).get("samples", [])
    if not samples or record is None or record.get("unit") != "images":
        ax.text(0.5, 0.5, f"no progress in images recorded for {node}", ha="center")
        ax.set_axis_off()
        return fig
    start = float(record["started_s"])
    seconds = [start + t for t, _ in samples]
    done = [d for _, d in samples]
    ax.step(seconds, done, where="post", color="tab:blue", label="images written")
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("images written")
    rate_ax = ax.twinx()
    rates = [(s, d / t) for (t, d), s in zip(samples, seconds, strict=True) if t > 0 and d]
    if rates:
        rate_ax.plot(*zip(*rates, strict=True), "o-", color="tab:orange", label="images/s so far")
    rate_ax.set_ylim(bottom=0)
    rate_ax.set_ylabel("images/s since the node started")
    last_t, last_done = samples[-1]
    mean = f"{last_done / last_t:.1f} images/s" if last_t > 0 else "n/a"
    ax.set_title(f"{node}: {last_done} images in {last_t:.0f} s ({mean})")
    fig.legend(loc="upper left", bbox_to_anchor=(0.1, 0.88))
    fig.tight_layout()
    return fig
