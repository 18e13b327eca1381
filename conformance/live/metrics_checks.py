"""Checklist 14.3, "monitoring metrics collected": the metrics sidecar, run as the target
runs it, reports the server up and its connections, and the count follows real connections."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conformance.plan import figure
from conformance.registry import live
from conformance.results import Finding

STS_FILE = "postgresql-product-change-statefulset.yaml"
EXTRA_CONNECTIONS = 5


def scrape(url: str) -> dict[str, float]:
    """pg_up, and pg_stat_activity_count summed over databases and states."""
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    out = {"pg_up": None, "connections": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "pg_up":
                out["pg_up"] = sample.value
            elif sample.name == "pg_stat_activity_count":
                out["connections"] += sample.value
    return out


def judge(before: dict, after: dict, opened: int) -> list[Finding]:
    obj = f"StatefulSet/{figure('name').expected}"
    field = f"containers[{figure('metrics-container').expected}]"
    if before["pg_up"] != 1:
        return [Finding(STS_FILE, obj, f"{field} pg_up", "1 (the exporter reaches the server)", str(before["pg_up"]))]
    if after["connections"] < before["connections"] + opened:
        return [Finding(STS_FILE, obj, f"{field} pg_stat_activity_count",
                        f"at least {before['connections'] + opened:g} after opening {opened} connections",
                        f"{after['connections']:g}")]
    return []


@live("live-14.3-metrics", "14.3", "the metrics sidecar reports the server up and its connections, which move",
      checklist=("14.3-metrics",))
def metrics(ctx):
    url = ctx.target.metrics_url()
    before = scrape(url)
    if before["pg_up"] != 1:
        return judge(before, before, 0)
    connections = [ctx.connect("app") for _ in range(EXTRA_CONNECTIONS)]
    try:
        # Until the count shows them, bounded: a session of an earlier check may still be
        # ending when `before` was read, and the exporter reads pg_stat_activity per scrape.
        from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

        wanted = before["connections"] + EXTRA_CONNECTIONS
        after = retry(stop=stop_after_delay(10), wait=wait_fixed(0.5), retry=retry_if_result(
            lambda seen: seen["connections"] < wanted), retry_error_callback=lambda state: state.outcome.result())(
            scrape)(url)
    finally:
        for conn in connections:
            conn.close()
    return judge(before, after, EXTRA_CONNECTIONS)
