"""Parity reports as one self-contained HTML file: summary, per-output table, localization, plots.

Plots are drawn with matplotlib (Agg) and embedded as base64 PNG, and the CSS is inline, so the
file opens anywhere with no network access.
"""
from __future__ import annotations

import base64
import html
import io
from typing import Any, Iterable, Sequence

import numpy as np

from .compare import ParityReport

MAX_PLOTTED_OUTPUTS = 8

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d2329;max-width:1100px}
h1{font-size:1.5rem;margin-bottom:.2rem} h2.hop{font-size:1.3rem;border-bottom:2px solid #57606a} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.verdict{display:inline-block;padding:.25rem .7rem;border-radius:4px;font-weight:600;color:#fff}
.pass{background:#1a7f37} .fail{background:#cf222e}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem} th,td{border:1px solid #d0d7de;padding:.3rem .6rem}
th{background:#f6f8fa;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#ffebe9} .muted{color:#57606a} ul.problems li{color:#cf222e}
img{max-width:100%;border:1px solid #d0d7de;margin:.4rem 0}
code{background:#f6f8fa;padding:0 .25rem;border-radius:3px}
"""


def _num(value, spec: str = ".3g") -> str:
    return "–" if value is None else format(value, spec)


def _plot(name: str, ref: np.ndarray, cand: np.ndarray) -> str:
    """Error histogram and reference-vs-candidate scatter for one output, as a data: URI."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    finite = np.isfinite(ref) & np.isfinite(cand)
    ref, cand = ref[finite], cand[finite]
    diff = np.abs(cand - ref)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    positive = diff[diff > 0]
    if positive.size:
        bins = np.logspace(np.log10(positive.min()), np.log10(positive.max()) + 1e-9, 40)
        left.hist(positive, bins=bins, color="#0969da")
        left.set_xscale("log")
        left.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap
    left.set_title(f"{name}: |candidate - reference| ({diff.size - positive.size} exact)", fontsize=9)
    left.set_xlabel("absolute error")
    left.set_ylabel("values")
    right.scatter(ref, cand, s=3, alpha=0.5, color="#8250df")
    if ref.size:
        lo, hi = float(min(ref.min(), cand.min())), float(max(ref.max(), cand.max()))
        right.plot([lo, hi], [lo, hi], color="#57606a", linewidth=0.8, linestyle="--")
    right.set_title(f"{name}: candidate vs reference", fontsize=9)
    right.set_xlabel("reference")
    right.set_ylabel("candidate")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _rows(report: ParityReport) -> Iterable[str]:
    for out in report.outputs:
        verdict = "pass" if out.passed else "FAIL"
        top1 = "–" if out.top1_agreement is None else f"{out.top1_agreement:.0%}"
        top5 = "–" if out.top5_agreement is None else f"{out.top5_agreement:.0%}"
        share = "–" if out.out_of_tolerance is None else f"{out.out_of_tolerance:.2%}"
        cells = [html.escape(out.candidate_name), html.escape(str(out.candidate_shape)), _num(out.max_abs),
                 _num(out.max_rel), _num(out.mean_abs), _num(out.rmse), _num(out.cosine, ".6f"), share,
                 "yes" if out.nonfinite_agree in (True, None) else "no", top1, top5, verdict]
        classes = ["", ""] + ["num"] * 9 + [""]
        tds = "".join(f'<td class="{c}">{v}</td>' for c, v in zip(classes, cells))
        yield f'<tr class="{"" if out.passed else "bad"}">{tds}</tr>'


def _localization(found: dict[str, Any] | None) -> str:
    if not found:
        return "<p class='muted'>Not requested (run with <code>--localize</code>).</p>"
    parts = [f"<p><b>{html.escape(found['status'])}</b>: {html.escape(found['message'])}</p>"]
    if found.get("trace"):
        keys = [k for k in ("module", "layer", "class", "node", "op_type", "tensor") if any(k in row for row in found["trace"])]
        head = "".join(f"<th>{k}</th>" for k in keys) + "<th>max abs</th><th>beyond tol.</th><th>result</th>"
        body = []
        for row in found["trace"]:
            cells = "".join(f"<td>{html.escape(str(row.get(k, '')))}</td>" for k in keys)
            body.append(f"<tr class='{'' if row['passed'] else 'bad'}'>{cells}<td class='num'>{_num(row['max_abs'])}</td>"
                        f"<td class='num'>{row['out_of_tolerance']:.2%}</td><td>{'agrees' if row['passed'] else 'DIVERGES'}</td></tr>")
        parts.append(f"<table><tr>{head}</tr>{''.join(body)}</table>")
    return "".join(parts)


def _generation(record: dict | None, suffix: str) -> str:
    """Greedy decoding per runtime and prompt: both sides' tokens, where they part, the speeds."""
    if record is None:
        return ""
    rows = []
    for runtime, result in record["runtimes"].items():
        if "error" in result:
            rows.append(f"<tr><td>{html.escape(runtime)}</td><td colspan='5'>{html.escape(result['error'])}</td>"
                        f"<td>{_verdict(False)}</td></tr>")
            continue
        for item in result["prompts"]:
            step = item["first_divergence"]
            parted = "-" if step is None else f"step {step}{' (tie)' if item['tie'] else ''}"
            same = item["reference_tokens"] == item["candidate_tokens"]
            rows.append(f"<tr><td>{html.escape(runtime)}</td><td>{item['prompt']}</td><td>{item['reference_tokens']}</td>"
                        f"<td>{'same' if same else item['candidate_tokens']}</td><td>{parted}</td>"
                        f"<td>{item['reference_tokens_per_s']} / {item['candidate_tokens_per_s']}</td>"
                        f"<td>{_verdict(not item['problems'])}</td></tr>")
    not_run = "".join(f"<li>{html.escape(name)}: {html.escape(why)}</li>" for name, why in record.get("not_run", {}).items())
    return (f"<h2>Greedy generation ({record['max_new_tokens']} new tokens, reference: "
            f"{html.escape(record['reference'])})</h2><table id='generation{suffix}'><tr><th>runtime</th><th>prompt</th>"
            "<th>reference tokens</th><th>candidate tokens</th><th>parted at</th><th>tokens/s (ref / cand)</th>"
            f"<th>result</th></tr>{''.join(rows)}</table>"
            + (f"<p class='muted'>Not run here:</p><ul>{not_run}</ul>" if not_run else ""))


def _dataset(result: dict | None, suffix: str) -> str:
    """validate --data: both models' accuracy, per class as paired bars, and the classes that flip."""
    if result is None:
        return ""

    def bar(share: float, colour: str) -> str:
        return (f"<div style='background:{colour};height:0.8em;width:{200 * share:.0f}px;display:inline-block'></div> "
                f"{100 * share:.1f}%")
    rows = "".join(f"<tr><td>{html.escape(c['class'])}</td><td>{c['samples']}</td><td>{bar(c['reference'], '#4878d0')}</td>"
                   f"<td>{bar(c['candidate'], '#ee854a')}</td></tr>" for c in result["per_class"])
    flips = "".join(f"<li>{html.escape(f['reference'])} &rarr; {html.escape(f['candidate'])}: {f['count']}</li>"
                    for f in result["flip_pairs"])
    return (f"<h2>Labelled data</h2><p class='muted'>{html.escape(result['source'])}; scored output "
            f"<code>{html.escape(result['output'])}</code></p>"
            f"<p>top-1 accuracy: reference {100 * result['reference_top1']:.1f}%, candidate "
            f"{100 * result['candidate_top1']:.1f}%; agreement {100 * result['agreement_top1']:.1f}% "
            f"({result['flips']} of {result['samples']} samples change class)</p>"
            f"<table id='dataset{suffix}'><tr><th>class</th><th>samples</th><th>reference accuracy</th>"
            f"<th>candidate accuracy</th></tr>{rows}</table>"
            + (f"<h3>Classes that flip (reference &rarr; candidate)</h3><ul>{flips}</ul>" if flips else ""))


def _verdict(passed: bool) -> str:
    return "<span class='verdict pass'>PASSED</span>" if passed else "<span class='verdict fail'>FAILED</span>"


def _section(report: ParityReport, index: int = 0) -> str:
    """One comparison: summary, outputs, failures, warnings, localization, plots. Element ids of
    the first section are plain (``outputs``); later ones are numbered (``outputs-2``)."""
    suffix = "" if index == 0 else f"-{index + 1}"
    header = ("<tr><th>output</th><th>shape</th><th>max abs</th><th>max rel</th><th>mean abs</th><th>RMSE</th>"
              "<th>cosine</th><th>beyond tol.</th><th>NaN/Inf agree</th><th>top-1</th><th>top-5</th><th>result</th></tr>")
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in report.all_failures())
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in report.warnings)
    plots = []
    for name, (ref, cand) in list(report.plot_data.items())[:MAX_PLOTTED_OUTPUTS]:
        plots.append(f"<h3>{html.escape(name)}</h3><img alt='plots of {html.escape(name)}' src='{_plot(name, ref, cand)}'>")
    timing = ", ".join(f"{k.replace('_', ' ')} {v:.2f}s" for k, v in report.seconds.items())
    return f"""<p>{_verdict(report.passed)} <span class="muted">reference</span> <code>{html.escape(report.reference)}</code>
({html.escape(str(report.reference_format or ''))}) <span class="muted">vs candidate</span>
<code>{html.escape(report.candidate)}</code> ({html.escape(str(report.candidate_format or ''))})</p>
<p class="muted">{report.samples} sample(s), batch sizes {report.batch_sizes}; {html.escape(report.precision)} tolerances:
a value passes when |candidate − reference| ≤ {html.escape(report.tolerance.describe().replace(", rtol", " + rtol"))}
{('. Timings: ' + html.escape(timing)) if timing else ''}</p>
<h2>Outputs</h2>
<table id="outputs{suffix}">{header}{''.join(_rows(report))}</table>
{f"<h2>Failures</h2><ul class='problems'>{problems}</ul>" if problems else ""}
{f"<h2>Warnings</h2><ul>{warnings}</ul>" if warnings else ""}
{_generation(report.generation, suffix)}
{_dataset(report.dataset, suffix)}
<h2>Localization</h2>
{_localization(report.localization)}
<h2>Plots</h2>
{''.join(plots) or "<p class='muted'>No values to plot.</p>"}
"""


def render_html(report: ParityReport | Sequence[tuple[str, ParityReport]], title: str = "modelport parity report") -> str:
    """One self-contained page for one comparison, or for every hop of a conversion
    (``[(heading, report), ...]``), each hop in its own section."""
    if isinstance(report, ParityReport):
        body = _section(report)
    else:
        hops = list(report)
        overall = all(r.passed for _, r in hops)
        contents = "".join(f"<li><a href='#hop-{i + 1}'>{html.escape(heading)}</a>: "
                           f"{'passed' if r.passed else 'FAILED'}</li>" for i, (heading, r) in enumerate(hops))
        body = (f"<p>{_verdict(overall)} {len(hops)} hop(s), each checked against the artifact before it</p>"
                f"<ol>{contents}</ol>"
                + "".join(f"<section id='hop-{i + 1}'><h2 class='hop'>Hop {i + 1}: {html.escape(heading)}</h2>"
                          f"{_section(r, i)}</section>" for i, (heading, r) in enumerate(hops)))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
{body}</body></html>
"""


REPORT_SUFFIXES = (".json", ".html", ".htm")


def check_report_path(path) -> None:
    from ..errors import UsageError
    if path is not None and path.suffix.lower() not in REPORT_SUFFIXES:
        raise UsageError(f"--report {str(path)!r}: the suffix must be .json or .html")


def write_report(path, report: ParityReport | Sequence[tuple[str, ParityReport]],
                 json_data: dict[str, Any] | None = None, title: str | None = None) -> None:
    """Write ``report`` (one comparison, or ``[(heading, report), ...]`` per conversion hop) as JSON
    (``json_data`` when given, e.g. a whole conversion) or HTML, atomically."""
    import json
    from .._atomic import atomic_output
    with atomic_output(path) as tmp:
        if path.suffix.lower() == ".json":
            tmp.write_text(json.dumps(json_data if json_data is not None else report.to_dict(), indent=2,  # type: ignore[union-attr]
                                      allow_nan=False))
        else:
            tmp.write_text(render_html(report, title or "modelport parity report"), encoding="utf-8")
