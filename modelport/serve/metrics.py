"""Prometheus metrics in the text exposition format, read from the data plane's own counters.

Names follow Triton's where Triton has one (``nv_inference_request_success``, ``..._failure``,
``nv_inference_count``, ``nv_inference_exec_count``, ``nv_inference_request_duration_us``,
``nv_inference_queue_duration_us``, ``nv_inference_compute_infer_duration_us``, the response
cache's ``nv_cache_num_hits_per_model``, ``..._misses_...``, ``nv_cache_hit_duration_per_model``,
``..._miss_...``, labelled
``model`` and ``version``), so dashboards and alerts written for Triton work unchanged. Triton
exposes these counters without the ``_total`` suffix that prometheus_client's exposition appends
to every counter, so the text is rendered here (the tests parse it with prometheus_client's own
parser). modelport adds ``modelport_batch_size`` and ``modelport_queue_depth`` histograms and a
``modelport_model_ready`` gauge.

Nothing is counted twice: the numbers are the same :class:`~modelport.serve.repository.Stats` the
statistics endpoints report, read at scrape time.
"""
from __future__ import annotations

from .repository import Repository

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DEPTH_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# name -> (help, how to read it off a version's Stats)
_COUNTERS = {
    "nv_inference_request_success": ("Number of successful inference requests, all batch sizes",
                                     lambda s: s.success[0]),
    "nv_inference_request_failure": ("Number of failed inference requests, all batch sizes", lambda s: s.fail[0]),
    "nv_inference_count": ("Number of inferences performed (a batch of N counts N)", lambda s: s.inference_count),
    "nv_inference_exec_count": ("Number of model executions performed (a merged batch counts 1)",
                                lambda s: s.execution_count),
    "nv_inference_request_duration_us": ("Cumulative inference request duration in microseconds",
                                         lambda s: (s.success[1] + s.fail[1]) // 1000),
    "nv_inference_queue_duration_us": ("Cumulative inference queuing duration in microseconds",
                                       lambda s: s.queue[1] // 1000),
    "nv_inference_compute_infer_duration_us": ("Cumulative compute inference duration in microseconds",
                                               lambda s: s.compute_infer[1] // 1000),
    "nv_cache_num_hits_per_model": ("Number of requests answered from the response cache", lambda s: s.cache_hit[0]),
    "nv_cache_num_misses_per_model": ("Number of response cache lookups that missed", lambda s: s.cache_miss[0]),
    "nv_cache_hit_duration_per_model": ("Cumulative duration of response cache hits in microseconds",
                                        lambda s: s.cache_hit[1] // 1000),
    "nv_cache_miss_duration_per_model": ("Cumulative duration of response cache misses (lookup and insert) in "
                                         "microseconds", lambda s: s.cache_miss[1] // 1000),
}


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels) -> str:
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


def _histogram(lines: list[str], name: str, labels: dict, counts: dict[int, int], buckets) -> None:
    for bound in buckets:
        cumulative = sum(n for value, n in counts.items() if value <= bound)
        lines.append(f"{name}_bucket{_labels(**labels, le=str(float(bound)))} {cumulative}")
    total = sum(counts.values())
    lines.append(f"{name}_bucket{_labels(**labels, le='+Inf')} {total}")
    lines.append(f"{name}_sum{_labels(**labels)} {sum(value * n for value, n in counts.items())}")
    lines.append(f"{name}_count{_labels(**labels)} {total}")


def render(repository: Repository) -> str:
    """The /metrics page for every model version the repository knows."""
    entries = [entry for versions in repository.models.values() for entry in versions.values()]
    lines: list[str] = []
    for name, (text, read) in _COUNTERS.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} counter"]
        lines += [f"{name}{_labels(model=e.name, version=e.version)} {read(e.stats)}" for e in entries]
    lines += ["# HELP modelport_model_ready Whether the model version is ready (1) or not (0)",
              "# TYPE modelport_model_ready gauge"]
    lines += [f"modelport_model_ready{_labels(model=e.name, version=e.version)} {int(e.ready)}" for e in entries]
    lines += ["# HELP modelport_batch_size Rows per model execution (dynamic batching merges requests)",
              "# TYPE modelport_batch_size histogram"]
    for e in entries:
        _histogram(lines, "modelport_batch_size", {"model": e.name, "version": e.version},
                   {size: count for size, (count, _) in e.stats.batches.items()}, BATCH_BUCKETS)
    lines += ["# HELP modelport_queue_depth Requests already queued for the model when a request arrived",
              "# TYPE modelport_queue_depth histogram"]
    for e in entries:
        _histogram(lines, "modelport_queue_depth", {"model": e.name, "version": e.version}, e.stats.depths,
                   DEPTH_BUCKETS)
    return "\n".join(lines) + "\n"
