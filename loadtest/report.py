"""The run's report: ``report.json``, a self-contained ``report.html``, a summary table.

The report dict is the single source: the HTML page and the terminal table
are both drawn from it, and ``jobpipe capacity --from-report`` reads it back.
Its main keys: ``config`` (the plan), ``totals``, ``stages`` (per-stage
percentiles in ms), ``ledger`` (accepted/executed/lost/duplicates by job id),
``series`` (per-second throughput and percentiles, backlog samples), ``cdf``,
``saturation`` (ramps), ``redis_aof`` (AOF bytes per job, each rewrite's span,
and for a ramp ``steps_offered_per_s``, the steps they overlapped), ``chaos``
(kills, worker hand-overs), ``soak`` (RSS and fds), ``peers`` (with ratios) and
``notes`` (how each figure was measured).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import orjson
from rich.markup import escape
from rich.table import Table

from loadtest.aof import aof_line
from loadtest.cpu_report import cpu_rows
from loadtest.plots import all_plots

STAGE_LABELS = {
    "send_lag": "producer lateness (intended -> enqueue call)",
    "enqueue": "enqueue call (one enqueue_many)",
    "redis": "waiting in Redis (-> bridge produced)",
    "kafka": "in Kafka (-> handler start)",
    "queued": "queued: Redis + Kafka (enqueued -> handler start)",
    "run": "running (handler)",
    "e2e": "end to end (intended send -> handler done)",
}
COLUMNS = ("p50_ms", "p95_ms", "p99_ms", "p99.9_ms", "max_ms")


def write_report(run_dir: str | Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``run_dir``; return their paths."""
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "report.json"
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2
                                       | orjson.OPT_SERIALIZE_NUMPY))
    html_path = folder / "report.html"
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path


def read_report(run_dir: str | Path) -> dict[str, Any]:
    """``report.json`` of a run folder."""
    data: dict[str, Any] = orjson.loads((Path(run_dir) / "report.json").read_bytes())
    return data


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _or_na(value: Any) -> Any:
    return "n/a (not before the end)" if value is None else value


def _table_html(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def stage_rows(report: dict[str, Any]) -> list[list[Any]]:
    """One row per recorded stage: label, count, then the percentile columns."""
    rows = []
    for stage, label in STAGE_LABELS.items():
        summary = report.get("stages", {}).get(stage)
        if summary and summary.get("count"):
            rows.append([label, int(summary["count"]), *(summary[c] for c in COLUMNS)])
    return rows


def headline_rows(report: dict[str, Any]) -> list[list[Any]]:
    """Jobs accepted/executed, throughput, lost and duplicates."""
    totals, ledger = report.get("totals", {}), report.get("ledger", {})
    rows: list[list[Any]] = [
        ["jobs offered", totals.get("offered", 0)],
        ["jobs accepted (ledger)", ledger.get("accepted", totals.get("sent", 0))],
        ["jobs executed (distinct ids)", ledger.get("executed", 0)],
        ["throughput (done/s over the send window)", totals.get("throughput_per_s", 0.0)],
        ["lost (must be 0)", ledger.get("lost", "n/a")],
        ["duplicates (re-executions)", ledger.get("duplicates", "n/a")],
        ["rejected by backpressure", totals.get("rejected", 0)],
    ]
    if totals.get("drained") is False:
        rows.append(["drained before the timeout", "NO: see the notes"])
    handovers = report.get("chaos", {}).get("handovers")
    if handovers and handovers["each"]:
        rows.append(["worker kill -> its partitions ran elsewhere, s (median)",
                     _or_na(handovers["failover_s_median"])])
        rows.append(["worker restart -> it ran jobs again, s (median)",
                     _or_na(handovers["back_s_median"])])
        rows.append(["  of which: process start / group join, s (median)",
                     f"{_or_na(handovers['start_s_median'])} / "
                     f"{_or_na(handovers['join_s_median'])}"])
    saturation = report.get("saturation")
    if saturation:
        rows.append(["saturation (sustained, p99 < target)",
                     saturation.get("sustained_per_s") or "none held"])
    for name, peer in report.get("peers", {}).items():
        rows.append([f"{name}: throughput / p99 ms", f"{peer.get('throughput_per_s', 0):,.0f}"
                     f" / {peer.get('p99_ms', 0):,.1f}"])
        rows.append([f"jobpipe / {name} throughput ratio", peer.get("throughput_ratio", "n/a")])
        rows.append([f"{name} / jobpipe p99 ratio", peer.get("p99_ratio", "n/a")])
    return rows


def render_html(report: dict[str, Any]) -> str:
    """The report as one HTML page with its plots embedded as base64 PNGs."""
    config = report.get("config", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>jobpipe load test</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;"
        "color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
        "img{max-width:100%}.bad{color:#b00;font-weight:bold}code{background:#f4f4f4}"
        "</style></head><body>",
        "<h1>jobpipe load test</h1>",
        f"<p>Started {html.escape(str(report.get('started_at', '')))}; "
        f"command: <code>{html.escape(str(report.get('command', '')))}</code></p>",
    ]
    lost = report.get("ledger", {}).get("lost")
    if lost:
        parts.append(f"<p class='bad'>{lost} jobs LOST</p>")
    verdict = report.get("verdict")
    if verdict:
        style = "" if verdict["kept_up"] else " class='bad'"
        parts.append(f"<p{style}>{html.escape(verdict['text'])}</p>")
    aof = aof_line(report.get("redis_aof"))
    if aof is not None:
        parts.append(f"<p>{html.escape(aof)}</p>")
    parts.append("<h2>Summary</h2>" + _table_html(["", "value"], headline_rows(report)))
    parts.append("<h2>Latency per stage (ms)</h2>" + _table_html(
        ["stage", "count", "p50", "p95", "p99", "p99.9", "max"], stage_rows(report)))
    for title, png in all_plots(report):
        parts.append(f"<h2>{html.escape(title)}</h2>"
                     f"<img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>")
    if report.get("saturation"):
        rows = [[s["offered_per_s"], s["achieved_per_s"], s["p99_ms"],
                 s["backlog_slope_per_s"], "yes" if s["sustained"] else "; ".join(s["reasons"])]
                for s in report["saturation"]["steps"]]
        parts.append("<h2>Ramp steps</h2>" + _table_html(
            ["offered/s", "achieved/s", "p99 ms", "backlog slope/s", "sustained"], rows))
    parts.extend(cpu_html(report))
    if report.get("chaos", {}).get("kills"):
        rows = [[k["t_s"], k["target"], k.get("pid", "")] for k in report["chaos"]["kills"]]
        parts.append("<h2>Chaos: kill -9</h2>" + _table_html(["at s", "target", "pid"], rows))
    handovers = report.get("chaos", {}).get("handovers", {}).get("each")
    if handovers:
        rows = [[h["target"], h["kill_s"], h["partitions"], _or_na(h["failover_s"]),
                 h["taken_by_restart"], _or_na(h["back_s"]), _or_na(h["start_s"]),
                 _or_na(h["join_s"])] for h in handovers]
        parts.append("<h2>Chaos: worker fail-over (from the partition trace)</h2>" + _table_html(
            ["worker", "killed at s", "its partitions", "kill -> all ran elsewhere s",
             "of them first run by its restart", "restart -> its first job s",
             "of which process start s", "of which group join s"], rows))
    if report.get("soak"):
        rows = [[p["name"], p["pid"], p.get("rss_kb_start"), p.get("rss_kb_end"),
                 p.get("fds_start"), p.get("fds_end")] for p in report["soak"]["processes"]]
        parts.append("<h2>Soak: memory and open files</h2>" + _table_html(
            ["process", "pid", "RSS kB start", "RSS kB end", "fds start", "fds end"], rows))
    parts.append("<h2>Configuration</h2>" + _table_html(
        ["setting", "value"], [[k, v] for k, v in config.items()]))
    notes = report.get("notes", [])
    if notes:
        parts.append("<h2>How it was measured</h2><ul>"
                     + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def cpu_html(report: dict[str, Any]) -> list[str]:
    """The CPU tables: the send window, then each ramp step."""
    cpu = report.get("cpu")
    if not cpu:
        return []
    header = ["process", "cores", "µs CPU per job"]
    run = cpu["run"]
    parts = [f"<h2>CPU per process (send window, {run['jobs']:,} jobs)</h2>"
             + _table_html(header, cpu_rows(run))]
    for step in cpu.get("steps", []):
        parts.append(f"<h3>CPU at {step['offered_per_s']:,.0f} jobs/s offered "
                     f"({step['jobs']:,} jobs)</h3>" + _table_html(header, cpu_rows(step)))
    parts.append(f"<p>{html.escape(cpu.get('note', ''))}</p>")
    if cpu.get("missing"):
        parts.append("<p>Not measured (not found listening on this machine as this user): "
                     + html.escape(", ".join(cpu["missing"])) + "</p>")
    return parts


def cpu_summary_table(report: dict[str, Any]) -> Table | None:
    """The send window's CPU per process for the terminal (None without CPU data)."""
    cpu = report.get("cpu")
    if not cpu:
        return None
    table = Table(title="CPU per process over the send window")
    for col in ("process", "cores", "µs CPU per job"):
        table.add_column(col, justify="left" if col == "process" else "right")
    for row in cpu_rows(cpu["run"]):
        table.add_row(str(row[0]), *(_fmt(c) for c in row[1:]))
    return table


def verdict_line(report: dict[str, Any]) -> str | None:
    """The verdict as rich markup: green when it kept up, bold red when not."""
    verdict = report.get("verdict")
    if not verdict:
        return None
    style = "green" if verdict["kept_up"] else "bold red"
    return f"[{style}]{escape(verdict['text'])}[/]"


def summary_table(report: dict[str, Any]) -> tuple[Table, Table]:
    """The headline and per-stage tables for the terminal."""
    head = Table(title="jobpipe load test", show_header=False)
    head.add_column("what")
    head.add_column("value", justify="right")
    for label, value in headline_rows(report):
        style = "bold red" if label.startswith("lost") and value not in (0, "n/a") else None
        head.add_row(label, _fmt(value), style=style)
    stages = Table(title="latency per stage (ms)")
    for col in ("stage", "count", "p50", "p95", "p99", "p99.9", "max"):
        stages.add_column(col, justify="left" if col == "stage" else "right")
    for row in stage_rows(report):
        stages.add_row(*(str(row[0]), *(_fmt(c) for c in row[1:])))
    return head, stages
