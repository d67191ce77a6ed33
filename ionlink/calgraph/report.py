"""The morning report: what was checked, what changed, what failed, and each parameter's
drift through the night, as JSON and as one self-contained HTML page (plots embedded as
base64 PNGs, no external files).

:func:`build_report` takes the graph logs of the night's runs (:attr:`Maintainer.log` entries,
times in seconds since the epoch), the parameter histories (:class:`ParamStore` entries) and,
optionally, reference curves (the simulation's true values) and per-parameter tolerances.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["build_report", "render_html", "write_report"]

_FAILURE_RESULTS = ("failed", "rejected", "reverted", "blocked", "bad_data")


def build_report(log: Sequence[dict], histories: Mapping[str, Sequence[dict]],
                 start_s: float, end_s: float,
                 reference: Mapping[str, Sequence[tuple[float, float]]] | None = None,
                 tolerances: Mapping[str, float] | None = None,
                 faults: Sequence[dict] | None = None,
                 notes: Sequence[str] = ()) -> dict:
    """Summarise a night.

    :param log: graph log entries of every run in the night.
    :param histories: parameter key -> provenance entries (all of them; the window is
        applied here).
    :param start_s: start of the night (s since the epoch).
    :param end_s: end of the night (s since the epoch).
    :param reference: parameter key -> [(time_s, true value)] (simulation only).
    :param tolerances: parameter key -> tolerance (same unit as the parameter).
    :param faults: diagnosed root causes: dicts with ``node``, ``message``, ``rid``, ``time``.
    :param notes: free lines (e.g. the faults that were injected) shown at the top.
    """
    if end_s < start_s:
        raise ValueError(f"report window ends ({end_s}) before it starts ({start_s})")
    reference = reference or {}
    tolerances = tolerances or {}
    in_window = [e for e in log if start_s <= e["time"] <= end_s]
    counts: dict[str, int] = {}
    for e in in_window:
        counts[f"{e['step']}:{e['result']}"] = counts.get(f"{e['step']}:{e['result']}", 0) + 1
    nodes: dict[str, dict] = {}
    for e in in_window:
        n = nodes.setdefault(e["node"], {"checks": 0, "calibrations": 0, "failures": 0,
                                         "last": ""})
        if e["step"] in ("check_data", "diagnose", "verify"):
            n["checks"] += 1
        if e["step"] == "calibrate":
            n["calibrations"] += 1
        if e["result"] in _FAILURE_RESULTS:
            n["failures"] += 1
        n["last"] = f"{e['step']} {e['result']}"
    params: dict[str, dict] = {}
    changes = []
    for key, entries in histories.items():
        window = [e for e in entries if start_s <= e["time"] <= end_s]
        for e in window:
            if e["action"] != "rejected":
                changes.append({"param": key, **e})
        measured = [(e["time"], e["values"][key]) for e in in_window
                    if key in e.get("values", {}) and e["values"][key] is not None
                    and e["step"] in ("check_data", "diagnose", "verify")]
        before = [e for e in entries if e["time"] < start_s and e["action"] != "rejected"]
        stored = ([(start_s, before[-1]["value"])] if before else []) + [
            (e["time"], e["value"]) for e in window if e["action"] != "rejected"]
        info: dict[str, Any] = {"stored": stored, "measured": measured,
                                "tolerance": tolerances.get(key),
                                "changes": sum(1 for e in window if e["action"] != "rejected"),
                                "rejected": sum(1 for e in window if e["action"] == "rejected")}
        ref = list(reference.get(key, ()))
        if ref:
            info["reference"] = ref
            errors = [_stored_at(stored, t) - v for t, v in ref
                      if _stored_at(stored, t) is not None]
            info["max_abs_error"] = max((abs(x) for x in errors), default=None)
            tol = tolerances.get(key)
            if tol is not None and errors:
                info["fraction_within_tolerance"] = sum(abs(x) <= tol for x in errors) / len(
                    errors)
        params[key] = info
    failures = [e for e in in_window if e["result"] in _FAILURE_RESULTS]
    changes.sort(key=lambda e: e["time"])
    return {
        "window": {"start": start_s, "end": end_s, "start_utc": _utc(start_s),
                   "end_utc": _utc(end_s)},
        "runs": sorted({e["rid"] for e in in_window if e.get("rid") is not None}),
        "notes": list(notes),
        "counts": counts,
        "nodes": nodes,
        "changes": changes,
        "failures": failures,
        "faults": list(faults or ()),
        "parameters": params,
    }


def _stored_at(stored: Sequence[tuple[float, Any]], t: float) -> float | None:
    value = None
    for ts, v in stored:
        if ts <= t:
            value = v
        else:
            break
    return None if value is None else float(value)


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def _plot(key: str, info: dict, start_s: float) -> str:
    """A PNG (base64) of one parameter through the night."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 2.6), dpi=90)
    ax = fig.add_subplot()
    h = 1 / 3600.0
    ref = info.get("reference") or []
    tol = info.get("tolerance")
    if ref:
        t = [(x - start_s) * h for x, _ in ref]
        v = [y for _, y in ref]
        ax.plot(t, v, color="0.4", lw=1, label="true value")
        if tol is not None:
            ax.fill_between(t, [y - tol for y in v], [y + tol for y in v], color="0.85",
                            label="true +- tolerance")
    if info["stored"]:
        end = max([x for x, _ in ref] + [x for x, _ in info["stored"]] +
                  [x for x, _ in info["measured"]])
        ts = [(x - start_s) * h for x, _ in info["stored"]] + [(end - start_s) * h]
        vs = [float(y) for _, y in info["stored"]]
        ax.step(ts, vs + vs[-1:], where="post", color="C0", label="stored")
    if info["measured"]:
        ax.plot([(x - start_s) * h for x, _ in info["measured"]],
                [y for _, y in info["measured"]], "x", color="C1", ms=4, label="checks")
    ax.set_xlabel("hours into the night")
    ax.set_title(key, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def render_html(report: dict) -> str:
    """One self-contained HTML page of :func:`build_report`'s result."""
    e = html.escape
    w = report["window"]
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Calibration night "
           f"{e(w['start_utc'])}</title><style>body{{font-family:sans-serif;margin:1.5em}}"
           "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:2px 6px;"
           "font-size:90%}.bad{color:#b00}</style></head><body>",
           f"<h1>Calibration night {e(w['start_utc'])} &ndash; {e(w['end_utc'])}</h1>",
           f"<p>{len(report['runs'])} graph runs (rids {e(_span(report['runs']))}).</p>"]
    for note in report["notes"]:
        out.append(f"<p>{e(note)}</p>")
    out.append("<h2>Faults diagnosed</h2>")
    if report["faults"]:
        out.append("<ul>" + "".join(
            f"<li class='bad'>{e(_utc(f['time']))} rid {f.get('rid')}: <b>{e(f['node'])}</b>: "
            f"{e(f['message'])}</li>" for f in report["faults"]) + "</ul>")
    else:
        out.append("<p>none</p>")
    out.append("<h2>Nodes</h2><table><tr><th>node</th><th>checks</th><th>calibrations</th>"
               "<th>failures</th><th>last step</th></tr>")
    for name, n in report["nodes"].items():
        cls = " class='bad'" if n["failures"] else ""
        out.append(f"<tr{cls}><td>{e(name)}</td><td>{n['checks']}</td>"
                   f"<td>{n['calibrations']}</td><td>{n['failures']}</td>"
                   f"<td>{e(n['last'])}</td></tr>")
    out.append("</table><h2>What changed</h2><table><tr><th>time</th><th>parameter</th>"
               "<th>action</th><th>previous</th><th>new</th><th>rid</th><th>data</th></tr>")
    for c in report["changes"]:
        out.append(f"<tr><td>{e(_utc(c['time']))}</td><td>{e(c['param'])}</td>"
                   f"<td>{e(c['action'])}</td><td>{e(_fmt(c['previous']))}</td>"
                   f"<td>{e(_fmt(c['value']))}</td><td>{c.get('rid')}</td>"
                   f"<td>{e(str(c.get('data', '')))}</td></tr>")
    out.append("</table><h2>What failed</h2><table><tr><th>time</th><th>node</th><th>step</th>"
               "<th>result</th><th>message</th></tr>")
    for f in report["failures"]:
        out.append(f"<tr class='bad'><td>{e(_utc(f['time']))}</td><td>{e(f['node'])}</td>"
                   f"<td>{e(f['step'])}</td><td>{e(f['result'])}</td>"
                   f"<td>{e(f['message'])}</td></tr>")
    out.append("</table><h2>Parameters through the night</h2>")
    for key, info in report["parameters"].items():
        line = f"{info['changes']} changes, {info['rejected']} rejected"
        if info.get("max_abs_error") is not None:
            line += f", largest |stored - true| {info['max_abs_error']:.4g}"
        if info.get("fraction_within_tolerance") is not None:
            line += f", within tolerance {100 * info['fraction_within_tolerance']:.0f}% of the time"
        if info.get("healthy_fraction_within_tolerance") is not None:
            line += (f" ({100 * info['healthy_fraction_within_tolerance']:.0f}% before the "
                     "first injected fault)")
        out.append(f"<h3>{e(key)}</h3><p>{e(line)}</p>")
        if info["stored"] or info["measured"]:
            out.append(f"<img alt='{e(key)}' src='data:image/png;base64,"
                       f"{_plot(key, info, w['start'])}'>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(report: dict, html_path: Any, json_path: Any) -> None:
    """Write the report as HTML and JSON files."""
    with open(json_path, "w") as f:
        json.dump(report, f, indent=1, default=_json_default)
    with open(html_path, "w") as f:
        f.write(render_html(report))


def _json_default(x: Any) -> Any:
    item = getattr(x, "item", None)
    if item is not None:
        return item()
    raise TypeError(f"cannot write {type(x).__name__} to JSON")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.9g}" if math.isfinite(v) else str(v)
    return str(v)


def _span(rids: Sequence[int]) -> str:
    return f"{rids[0]}-{rids[-1]}" if rids else "none"
