"""What a pipeline run leaves for people and programs: ``results.json`` (one record per job) and
``index.html``, a self-contained dashboard: models x targets coloured by verdict, each cell with its
size and latency as small bars against the largest of its target, linking the job's log, its JSON
result and (for conversions) its parity report."""
from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Sequence

from .runner import JobResult
from .spec import Pipeline

COLOURS = {"pass": "#d7f2dc", "fail": "#f8d4d4", "error": "#fbe3c4", "timeout": "#fbe3c4"}


def write(pipeline: Pipeline, results: Sequence[JobResult], seconds: float) -> dict:
    summary = {"pipeline": str(pipeline.path), "output": str(pipeline.output), "seconds": round(seconds, 2),
               "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "counts": {status: sum(r.status == status for r in results) for status in ("pass", "fail", "error", "timeout")},
               "cached": sum(r.cached for r in results), "jobs": [r.to_dict() for r in results]}
    _atomic_text(pipeline.output / "results.json", json.dumps(summary, indent=1) + "\n")
    _atomic_text(pipeline.output / "index.html", dashboard(pipeline, results, summary))
    return summary


def _atomic_text(path: Path, text: str) -> None:
    staged = path.with_name(f".{path.name}.partial")
    staged.write_text(text, encoding="utf-8")
    staged.replace(path)


def dashboard(pipeline: Pipeline, results: Sequence[JobResult], summary: dict) -> str:
    by_cell = {(r.model, r.target): r for r in results}
    models = [m for m in pipeline.models if any(r.model == m for r in results)]
    targets = [t for t in pipeline.targets if any(r.target == t for r in results)]
    largest = {t: max((r.figures.get("bytes", 0) for r in results if r.target == t), default=0) or 1 for t in targets}
    slowest = {t: max((r.figures.get("latency_ms", 0) for r in results if r.target == t), default=0) or 1 for t in targets}
    head = "".join(f"<th>{html.escape(t)}</th>" for t in targets)
    rows = []
    for model in models:
        cells = []
        for target in targets:
            result = by_cell.get((model, target))
            cells.append(_cell(result, largest[target], slowest[target], pipeline.output) if result else "<td class='none'>-</td>")
        rows.append(f"<tr><th>{html.escape(model)}</th>{''.join(cells)}</tr>")
    counts = ", ".join(f"{n} {status}" for status, n in summary["counts"].items() if n)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>modelport pipeline: {html.escape(pipeline.path.name)}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #ccc; padding: .4rem .6rem; vertical-align: top; }}
td {{ min-width: 11rem; }} .verdict {{ font-weight: 600; }} .cached {{ color: #777; font-size: 85%; }}
.bar {{ height: 6px; background: #4878d0; margin: 2px 0 4px; }} .bar.latency {{ background: #ee854a; }}
.figure {{ font-variant-numeric: tabular-nums; font-size: 90%; }} .message {{ color: #900; font-size: 85%; max-width: 22rem; }}
a {{ color: #2457a6; font-size: 85%; margin-right: .5rem; }}
</style></head><body>
<h1>modelport pipeline <code>{html.escape(pipeline.path.name)}</code></h1>
<p id="summary">{len(results)} jobs: {html.escape(counts)}; {summary['cached']} unchanged since the last run;
{summary['seconds']:.1f} s. Every cell is the modelport command it stands for, checked as that command checks.</p>
<table id="results"><thead><tr><th>model</th>{head}</tr></thead><tbody>
{''.join(rows)}
</tbody></table>
<p>Bars: size (blue) and latency (orange) against the largest in the column.</p>
</body></html>
"""


def _cell(result: JobResult, largest: float, slowest: float, root: Path) -> str:
    figures = result.figures
    parts = [f"<div class='verdict'>{html.escape(result.status)}</div>"]
    if result.cached:
        parts.append("<div class='cached'>unchanged, from the last run</div>")
    if "bytes" in figures:
        parts.append(f"<div class='figure'>{figures['bytes'] / 2**20:.2f} MiB</div>"
                     f"<div class='bar' style='width:{100 * figures['bytes'] / largest:.0f}%'></div>")
    if "latency_ms" in figures:
        parts.append(f"<div class='figure'>{figures['latency_ms']:.2f} ms</div>"
                     f"<div class='bar latency' style='width:{100 * figures['latency_ms'] / slowest:.0f}%'></div>")
    if "worst" in figures:
        parts.append(f"<div class='figure'>worst error {figures['worst']:.1e} of scale</div>")
    if result.message:
        parts.append(f"<div class='message'>{html.escape(result.message)}</div>")
    links = [(result.log, "log"), (result.result, "result")]
    report = Path(result.artifact).parent / "report.html"  # conversions write one
    if (root / report).is_file():
        links.append((str(report), "parity report"))
    parts.append("".join(f"<a href='{html.escape(href)}'>{label}</a>" for href, label in links))
    return (f"<td class='{html.escape(result.status)}' data-model='{html.escape(result.model)}' "
            f"data-target='{html.escape(result.target)}' style='background:{COLOURS.get(result.status, '#eee')}'>"
            + "".join(parts) + "</td>")
