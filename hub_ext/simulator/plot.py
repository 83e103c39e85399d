"""A PNG of a replay: GPU utilisation and queue length over virtual time."""

from __future__ import annotations


def plot_summaries(summaries: list[dict], path: str) -> None:
    """One or more replays (e.g. one per policy) on the same two axes."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    fig, (util_ax, queue_ax) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    span = max((s["replayed_s"] for s in summaries), default=0)
    unit, scale = ("days", 86400.0) if span > 2 * 86400 else ("hours", 3600.0)
    for s in summaries:
        series = s["series"]
        t = [x / scale for x in series["time_s"]]
        label = f"{s['policy']} (mean {s['utilisation']:.0%})"
        util_ax.plot(t, [100 * u for u in series["utilisation"]], label=label, linewidth=1)
        queue_ax.plot(t, series["queue"], label=s["policy"], linewidth=1)
    first = summaries[0] if summaries else {"trace": "", "gpus": 0}
    util_ax.set_title(f"{first['trace']} on {first['gpus']} GPUs")
    util_ax.set_ylabel("GPUs held (%)")
    util_ax.set_ylim(0, 105)
    util_ax.legend(loc="lower right", fontsize="small")
    util_ax.grid(alpha=0.3)
    queue_ax.set_ylabel("workloads queued (max per bin)")
    queue_ax.set_xlabel(f"virtual time ({unit})")
    queue_ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
