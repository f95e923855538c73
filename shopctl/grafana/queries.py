"""PromQL the dashboards share. Every expression answers even before anything goes wrong:
error series fall back to zero (`or ... * 0`), so that a panel shows 0 % instead of
"No data" on a healthy stack."""

from __future__ import annotations

from shopctl.slo import NOT_PROBES

RATE = "$__rate_interval"


def rate(metric: str, selector: str = "", by: str = "", window: str = RATE) -> str:
    grouping = f" by ({by})" if by else ""
    matchers = f"{{{selector}}}" if selector else ""
    return f"sum{grouping} (rate({metric}{matchers}[{window}]))"


def join(*selectors: str) -> str:
    return ", ".join(s for s in selectors if s)


def error_ratio(selector: str = "", by: str = "", window: str = RATE) -> str:
    """5xx answers over all answers; 0 where there were none."""
    errors = rate("http_requests_total", join(selector, NOT_PROBES, 'status=~"5.."'), by, window)
    total = rate("http_requests_total", join(selector, NOT_PROBES), by, window)
    return f"({errors} or {total} * 0) / {total}"


def latency(quantile: float, selector: str = "", by: str = "") -> str:
    grouping = ", ".join(["le", *([by] if by else [])])
    buckets = rate("http_request_duration_seconds_bucket", join(selector, NOT_PROBES), grouping)
    return f"histogram_quantile({quantile}, {buckets})"


def or_zero(expr: str, label: str = "", text: str = "") -> str:
    """`expr`, or a single 0 (labelled `label`=`text`) when it has no series."""
    if not label:
        return f"({expr}) or on() vector(0)"
    return f'({expr}) or on() label_replace(vector(0), "{label}", "{text}", "", "")'


def slow_ratio(service: str, le: str, window: str = "$__range") -> str:
    """Share of `service`'s requests slower than the bucket bound `le`."""
    selector = join(f'service="{service}"', NOT_PROBES)
    fast = rate("http_request_duration_seconds_bucket", join(selector, f'le="{le}"'), window=window)
    total = rate("http_request_duration_seconds_count", selector, window=window)
    return f"1 - {fast} / {total}"


def budget_left(bad_ratio: str, objective: float) -> str:
    """The share of the error budget (1 - objective) that `bad_ratio` leaves unspent."""
    return f"1 - ({bad_ratio}) / {1 - objective:.6g}"
