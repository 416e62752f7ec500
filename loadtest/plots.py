"""The report's plots, drawn with matplotlib (Agg) and returned as base64 PNGs.

Each function takes the report dict (see :mod:`loadtest.report`) and returns
``None`` when the data it needs is missing, so a partial report still renders.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # (after use(): the backend must be chosen first)

FIGSIZE = (8.0, 3.6)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _finish_timeline(fig: Any, ax: Any, report: dict[str, Any], ylabel: str,
                     title: str) -> str:
    """Kill marks, axes, legend and grid of a plot over run time; the PNG."""
    _mark_kills(ax, report)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return _png(fig)


def _mark_kills(ax: Any, report: dict[str, Any]) -> None:
    for kill in report.get("chaos", {}).get("kills", []):
        ax.axvline(kill["t_s"], color="red", alpha=0.35, linewidth=1)


def throughput_plot(report: dict[str, Any]) -> str | None:
    """Sent and done per second over time (kills as red lines)."""
    series = report.get("series", {})
    seconds = series.get("seconds")
    if not seconds:
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.plot(seconds, series["sent_per_s"], label="sent/s (accepted by Redis)")
    ax.plot(seconds, series["done_per_s"], label="done/s (handler finished)")
    if series.get("offered_per_s"):
        ax.plot(seconds, series["offered_per_s"], "--", color="grey", label="offered/s")
    for name, peer in report.get("peers", {}).items():
        if peer.get("series", {}).get("done_per_s"):
            ax.plot(peer["series"]["seconds"], peer["series"]["done_per_s"],
                    label=f"{name} done/s (separate run)", alpha=0.7)
    return _finish_timeline(fig, ax, report, "jobs per second", "Throughput over time")


def percentiles_plot(report: dict[str, Any]) -> str | None:
    """End-to-end p50/p99/p99.9 per second, log scale."""
    series = report.get("series", {})
    seconds = series.get("seconds")
    if not seconds or not any(v for v in series.get("p99_ms", []) if v):
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p99.9_ms", "p99.9")):
        values = series.get(key, [])
        xs = [s for s, v in zip(seconds, values, strict=False) if v]
        ys = [v for v in values if v]
        ax.plot(xs, ys, label=label)
    target = report.get("config", {}).get("p99_target_ms")
    if target:
        ax.axhline(target, color="grey", linestyle=":", label=f"p99 target {target:g} ms")
    _mark_kills(ax, report)
    ax.set_yscale("log")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("end-to-end latency (ms)")
    ax.set_title("Latency percentiles over time (from intended send time)")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


def cdf_plot(report: dict[str, Any]) -> str | None:
    """Latency CDF per stage (and peers), on a log-latency axis."""
    cdfs = report.get("cdf", {})
    if not cdfs:
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for name, points in cdfs.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=name)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of jobs at or below")
    ax.set_title("Latency CDF")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


def backlog_plot(report: dict[str, Any]) -> str | None:
    """Jobs waiting in Redis and in Kafka over time."""
    backlog = report.get("series", {}).get("backlog", {})
    if not backlog.get("t_s"):
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.plot(backlog["t_s"], backlog["redis"], label="Redis (ready + in flight)")
    ax.plot(backlog["t_s"], backlog["kafka"], label="Kafka (workers' lag)")
    return _finish_timeline(fig, ax, report, "jobs waiting", "Backlog per stage")


def latency_vs_throughput_plot(report: dict[str, Any]) -> str | None:
    """p99 against achieved throughput for each ramp step, the knee marked."""
    saturation = report.get("saturation")
    if not saturation or not saturation.get("steps"):
        return None
    steps = saturation["steps"]
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ok = [s for s in steps if s["sustained"]]
    bad = [s for s in steps if not s["sustained"]]
    ax.plot([s["achieved_per_s"] for s in steps], [max(s["p99_ms"], 1e-3) for s in steps],
            color="grey", alpha=0.5)
    ax.scatter([s["achieved_per_s"] for s in ok], [max(s["p99_ms"], 1e-3) for s in ok],
               color="green", label="sustained", zorder=3)
    ax.scatter([s["achieved_per_s"] for s in bad], [max(s["p99_ms"], 1e-3) for s in bad],
               color="red", label="not sustained", zorder=3)
    target = report.get("config", {}).get("p99_target_ms")
    if target:
        ax.axhline(target, color="grey", linestyle=":", label=f"p99 target {target:g} ms")
    if saturation.get("sustained_per_s"):
        ax.axvline(saturation["sustained_per_s"], color="green", linestyle="--",
                   label=f"saturation {saturation['sustained_per_s']:,.0f}/s")
    ax.set_yscale("log")
    ax.set_xlabel("achieved throughput (jobs/s)")
    ax.set_ylabel("end-to-end p99 (ms)")
    ax.set_title("Latency vs throughput (ramp steps)")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


PLOTS = (
    ("Throughput over time", throughput_plot),
    ("Latency percentiles over time", percentiles_plot),
    ("Latency CDF", cdf_plot),
    ("Backlog per stage", backlog_plot),
    ("Latency vs throughput", latency_vs_throughput_plot),
)


def all_plots(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, base64 PNG) of every plot the report has data for."""
    out = []
    for title, draw in PLOTS:
        png = draw(report)
        if png is not None:
            out.append((title, png))
    return out
