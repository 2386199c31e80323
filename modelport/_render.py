"""Human-readable tables for the CLI (rich); ``--json`` output bypasses this module."""
from __future__ import annotations

import re
from typing import Any

from rich.markup import escape
from rich.console import Group
from rich.table import Table

from ._console import console

_INFO_SKIP = {"model", "format", "format_title", "size_bytes", "inputs", "outputs", "opsets"}


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def _shape(shape) -> str:
    if shape is None:
        return "? (unknown: pass --input-shape)"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def render_info(data: dict[str, Any]) -> None:
    out = console.__class__(highlight=False, soft_wrap=True)  # stdout
    out.print(f"[bold]{escape(data['model'])}[/]  {data['format_title']}  {human_size(data['size_bytes'])}")
    for key, value in data.items():
        if key not in _INFO_SKIP and value not in (None, "", [], {}):
            out.print(f"  {key}: {escape(str(value))}")
    for title in ("inputs", "outputs"):
        table = Table(title=title, title_justify="left", show_edge=False)
        for column in ("name", "shape", "dtype"):
            table.add_column(column)
        for spec in data[title]:
            table.add_row(escape(spec["name"]), _shape(spec["shape"]), spec["dtype"])
        if not data[title]:
            table.add_row("-", "unknown until input shapes are given", "-")
        out.print(table)


_BREAK_AFTER = re.compile(r"(?<=[/._:\-])")
# Width the parity table's other columns take (shape, numbers, result, borders) on one line.
_OTHER_COLUMNS = 71


def wrap_name(name: str, width: int) -> str:
    """Break a tensor name over lines so that no line is wider than ``width``: at its slashes
    (scopes) first, inside a scope at _ . : - only when the scope itself is too long; a terminal
    table would otherwise cut it in the middle of a word."""
    if len(name) <= width:
        return name
    pieces = []
    for scope in re.split(r"(?<=/)", name):
        pieces.extend(_BREAK_AFTER.split(scope) if len(scope) > width else [scope])
    lines, line = [], ""
    for piece in pieces:
        if line and len(line) + len(piece) > width:
            lines.append(line)
            line = ""
        line += piece
    lines.append(line)
    return "\n".join(lines)


def _fmt(value, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def _parity_table(report, width: int):
    """The per-output table; names too long for the terminal's width are numbered in the table
    and written out in full below it, broken at their separators."""
    name_width = width - _OTHER_COLUMNS
    pieces = [p for o in report.outputs for p in _BREAK_AFTER.split(o.candidate_name)]
    numbered = bool(pieces) and max(map(len, pieces)) > name_width
    table = Table(show_edge=False)
    for column in ("output", "shape", "max abs", "max rel", "cosine", "top-1", "rtol", "result"):
        table.add_column("#" if numbered and column == "output" else column,
                         justify="left" if column in ("output", "shape") else "right", overflow="fold",
                         no_wrap=column == "result")
    for number, item in enumerate(report.outputs, 1):
        top1 = "-" if item.top1_agreement is None else f"{item.top1_agreement:.0%}"
        verdict = "[green]pass[/]" if item.passed else "[red]FAIL[/]"
        label = str(number) if numbered else escape(wrap_name(item.candidate_name, name_width))
        table.add_row(label, escape(str(item.candidate_shape)), _fmt(item.max_abs),
                      _fmt(item.max_rel), _fmt(item.cosine, ".6f"), top1, _fmt(item.rtol, ".2g"), verdict)
    if not numbered:
        return table
    legend = Table.grid(padding=(0, 1))
    legend.add_column(justify="right")
    legend.add_column()
    for number, item in enumerate(report.outputs, 1):
        legend.add_row(f"{number}:", escape(wrap_name(item.candidate_name, max(20, width - 6))))
    return Group(table, legend)


def _parity_details(out, report, already_said: tuple[str, ...] = ()) -> None:
    out.print(f"  {report.samples} samples, batch sizes {report.batch_sizes}, {report.tolerance.describe()}")
    for line in report.feeds:
        out.print(f"  fed {escape(line)}")
    raised = [o for o in report.outputs if o.rtol is not None and o.rtol > report.rtol]
    for item in raised:
        out.print(f"  rtol {item.rtol:.2g} for {escape(repr(item.candidate_name))}: the reference itself moves by "
                  f"{item.noise_floor:.2g} of its scale when its inputs move by one ulp (fp32 rounding it amplifies)")
    for warning in report.warnings:
        if not any(warning in said for said in already_said):
            out.print(f"  [yellow]warning:[/] {escape(warning)}")
    for failure in report.failures:
        out.print(f"  [red]failure:[/] {escape(failure)}")
    if report.generation is not None:
        _generation_lines(out, report)
    if report.dataset is not None:
        _dataset_lines(out, report.dataset)


def _dataset_lines(out, result: dict) -> None:
    """validate --data: accuracy of each model, agreement, the classes that flip."""
    def percent(value):
        return "-" if value is None else f"{100 * value:.1f}%"
    out.print(f"  data: {escape(result['source'])}; scored output {escape(repr(result['output']))}")
    table = Table("", "top-1 accuracy", "top-5 accuracy", title_justify="left")
    table.add_row("reference", percent(result["reference_top1"]), percent(result["reference_top5"]))
    table.add_row("candidate", percent(result["candidate_top1"]), percent(result["candidate_top5"]))
    out.print(table)
    out.print(f"  top-1 agreement {percent(result['agreement_top1'])}: {result['flips']} of {result['samples']} "
              "samples change class" + (":" if result["flips"] else ""))
    for pair in result["flip_pairs"]:
        out.print(f"    {escape(pair['reference'])} -> {escape(pair['candidate'])}: {pair['count']}")


def _generation_lines(out, report) -> None:
    """Greedy decoding per runtime: one line when every prompt gave the reference's tokens, else
    the prompts' tokens on both sides, where they part and whether that was a tie."""
    for runtime, record in report.generation["runtimes"].items():
        if "error" in record:
            continue  # said among the failures
        prompts = record["prompts"]
        speeds = (f"{report.generation['reference']} {_mean(p['reference_tokens_per_s'] for p in prompts):.0f} tokens/s, "
                  f"{runtime} {_mean(p['candidate_tokens_per_s'] for p in prompts):.0f} tokens/s")
        count = len(prompts[0]["reference_tokens"]) if prompts else 0
        if record["identical"]:
            out.print(f"  {runtime}: greedy decoding [green]identical[/] to the reference's, {count} tokens from each "
                      f"of {len(prompts)} prompts ({speeds})")
            continue
        out.print(f"  {runtime}: greedy decoding from {len(prompts)} prompts ({speeds}):")
        for item in prompts:
            step = item["first_divergence"]
            if step is None and not item["problems"]:
                out.print(f"    after {_ids(item['prompt'])}: [green]identical[/]")
                continue
            color = "yellow" if not item["problems"] else "red"
            where = (f"part at step {step}{' (a tie)' if item['tie'] else ''}" if step is not None
                     else "same tokens, logits beyond tolerance" if item["max_abs"] is not None else "differ")
            out.print(f"    after {_ids(item['prompt'])}: [{color}]{where}[/]")
            out.print(f"      reference {_ids(item['reference_tokens'])}")
            out.print(f"      candidate {_ids(item['candidate_tokens'])}")


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else 0.0


def _ids(tokens, shown: int = 12) -> str:
    return "[" + ", ".join(map(str, tokens[:shown])) + (", ...]" if len(tokens) > shown else "]")


def render_conversion(result) -> None:
    out = console.__class__(highlight=False, soft_wrap=True)
    for hop in result.hops:
        details = [f"{hop.seconds:.1f}s"] + [escape(text) for text in (hop.exporter, hop.note) if text]
        where = escape(hop.artifact) if hop.artifact else "[dim](intermediate)[/]"
        out.print(f"[bold]{hop.edge}[/] -> {where} ({', '.join(details)})")
        if hop.report is None:
            out.print(f"  [yellow]parity not checked[/] ({escape(hop.unchecked or '--no-check')})")
            continue
        out.print(_parity_table(hop.report, out.width))
        _parity_details(out, hop.report, tuple(result.warnings))
    verdict = "[green]parity passed[/]" if result.passed else "[red]parity FAILED[/]"
    if not result.checked:
        verdict = "[yellow]not checked[/]"
    out.print(f"{verdict}: {escape(result.destination)} written in {result.seconds:.1f}s")


def render_validation(report) -> None:
    out = console.__class__(highlight=False, soft_wrap=True)
    out.print(f"[bold]{escape(report.reference)}[/] ({report.reference_format}) vs "
              f"[bold]{escape(report.candidate)}[/] ({report.candidate_format}), {report.precision} tolerances")
    out.print(_parity_table(report, out.width))
    _parity_details(out, report)
    if report.localization is not None:
        color = "red" if report.localization["status"] == "found" else "dim"
        out.print(f"[{color}]localization:[/] {escape(report.localization['message'])}")
    verdict = "[green]parity passed[/]" if report.passed else "[red]parity FAILED[/]"
    out.print(f"{verdict}")


def render_quantize(result) -> None:
    """modelport quantize: the check, then source and result side by side."""
    out = console.__class__(highlight=False, soft_wrap=True)
    out.print(f"[bold]quantize {escape(result.mode)}[/] -> {escape(result.destination)} ({result.precision}); "
              f"calibration: {escape(result.calibration)}")
    if result.report is not None:
        out.print(_parity_table(result.report, out.width))
        _parity_details(out, result.report)
    columns = list(result.latency_ms.get("source", {}))
    table = Table("", "size", *[f"ORT ms, {column}" for column in columns], title_justify="left")
    for side in ("source", "quantized"):
        size = result.sizes.get(side)
        times = result.latency_ms.get(side, {})
        table.add_row(side, f"{size / 2**20:.2f} MiB" if size is not None else "-",
                      *[f"{times[column]:.3f}" if column in times else "-" for column in columns])
    out.print(table)
    if result.float_nodes:
        left = ", ".join(f"{count} {op}" for op, count in sorted(result.float_nodes.items()))
        why = ("ops ONNX Runtime's fp16 converter keeps in fp32" if result.mode == "fp16"
               else "no quantized weights feed them")
        out.print(f"  left in float ({why}): {escape(left)}")
    if result.attempts:
        tries = Table("try", "kept in float", "check", "worst |error| / scale", "top-1 agreement",
                      "ORT ms, b8 1 thread", title="--auto-exclude", title_justify="left")
        for number, attempt in enumerate(result.attempts, 1):
            kept = ", ".join(attempt.excluded[-4:]) + (f" (+{len(attempt.excluded) - 4} before)"
                                                       if len(attempt.excluded) > 4 else "")
            tries.add_row(str(number), escape(kept or "-"), "pass" if attempt.passed else "FAIL",
                          "-" if attempt.worst is None else f"{attempt.worst:.3g}",
                          "-" if attempt.agreement is None else f"{attempt.agreement:.1%}", f"{attempt.latency_ms:.3f}")
        out.print(tries)
    if result.entry_points:
        out.print("  where the error enters (each node's error less what its inputs already carried, share of "
                  "its output's scale):")
        for entry in result.entry_points[:5]:
            out.print(f"    {escape(entry['node'])} ({escape(entry['op_type'])}): +{entry['added']:.3g}, "
                      f"{entry['error']:.3g} after it")
        if not result.attempts:
            out.print("  [yellow]retry with --auto-exclude to keep the worst of them in float[/]")
    verdict = "[green]parity passed[/]" if result.passed else "[red]parity FAILED[/]"
    out.print(f"{verdict}: {escape(result.destination)} written in {result.seconds:.1f}s")


def render_edge(result, title: str = "TFLite bundle", runtime: str = "LiteRT") -> None:
    """An edge bundle: per file, its mode, size, latency in its runtime and verdict, as one table."""
    out = console.__class__(highlight=False, soft_wrap=True)
    for hop in result.conversion:
        passed = (hop.get("parity") or {}).get("passed")
        out.print(f"[bold]{hop['edge']}[/] ({'parity passed' if passed else 'not checked' if passed is None else 'parity FAILED'})")
    table = Table(title=f"{title} {escape(result.out_dir)}", title_justify="left")
    for column, justify in (("file", "left"), ("size", "right"), (f"{runtime} latency (1 thread)", "right"),
                            ("worst output", "right"), ("check", "left")):
        table.add_column(column, justify=justify)
    for item in result.files:
        outputs = item.report.get("outputs", [])
        cosine = min((o.get("cosine") or 0.0 for o in outputs), default=None)
        error = max((o.get("max_abs") or 0.0 for o in outputs), default=None)
        top1 = min((o["top1_agreement"] for o in outputs if o.get("top1_agreement") is not None), default=None)
        worst = f"max abs {error:.2g}, cosine {cosine:.5f}" if outputs else "-"
        if top1 is not None:
            worst += f", top-1 {top1:.1%}"
        verdict = "[green]pass[/]" if item.passed else "[red]FAIL[/]" if item.passed is False else "[yellow]NOT validated[/]"
        table.add_row(escape(item.name), f"{item.size / 1024:.0f} KiB",
                      "-" if item.latency_ms is None else f"{item.latency_ms:.2f} ms", worst, verdict)
    out.print(table)
    for item in result.files:  # runtimes that split a model between a delegate and their own kernels
        if item.placement:
            out.print(f"[dim]{escape(item.name)}: " + "; ".join(
                f"{where} {sum(counts.values())} op{'s' if sum(counts.values()) != 1 else ''}" + (f" ({escape(', '.join(sorted(counts)))})" if where != "XNNPACK" and counts else "")
                for where, counts in item.placement.items()) + "[/]")
    for rule in dict.fromkeys(item.rule for item in result.files):
        modes = ", ".join(item.mode for item in result.files if item.rule == rule)
        out.print(f"[dim]{escape(modes)}: {escape(rule)}[/]")
    unchecked = [item.name for item in result.files if item.passed is None]
    verdict = ("[red]a file FAILED its check[/]" if not result.passed
               else f"[yellow]{escape(', '.join(unchecked))} NOT validated; the others passed their check[/]" if unchecked
               else "[green]every file passed its check[/]")
    out.print(f"{verdict}: {escape(result.out_dir)} written in {result.seconds:.1f}s")


def render_pipeline(summary: dict) -> None:
    """A pipeline run: one row per job (cached ones marked), then where the results are."""
    out = console.__class__(highlight=False, soft_wrap=True)
    table = Table(title=f"pipeline {escape(summary['pipeline'])}", title_justify="left")
    for column, justify in (("model", "left"), ("target", "left"), ("result", "left"), ("size", "right"),
                            ("latency", "right"), ("seconds", "right")):
        table.add_column(column, justify=justify)
    colours = {"pass": "green", "fail": "red", "error": "yellow", "timeout": "yellow"}
    for job in summary["jobs"]:
        figures = job["figures"]
        verdict = f"[{colours.get(job['status'], 'white')}]{job['status']}[/]" + (" [dim](unchanged)[/]" if job["cached"] else "")
        table.add_row(escape(job["model"]), escape(job["target"]), verdict,
                      f"{figures['bytes'] / 2**20:.2f} MiB" if "bytes" in figures else "-",
                      f"{figures['latency_ms']:.2f} ms" if "latency_ms" in figures else "-",
                      f"{job['seconds']:.1f}")
    out.print(table)
    for job in summary["jobs"]:
        if job["message"]:
            out.print(f"[dim]{escape(job['model'])} {escape(job['target'])}: {escape(job['message'])}[/]")
    counts = ", ".join(f"{n} {status}" for status, n in summary["counts"].items() if n)
    out.print(f"{counts}; results.json and index.html in {escape(summary['output'])} ({summary['seconds']:.1f} s)")

