"""Checks .ci/e2e runs against a live tessera with Python's reference tools.

    checks.py openapi FILE...     each file validates as an OpenAPI 3.1 document
    checks.py metrics URL         /metrics parses as Prometheus text, and counters count
"""

import json
import sys
import urllib.request

from openapi_spec_validator import validate
from openapi_spec_validator.versions import consts as versions
from openapi_spec_validator.versions.shortcuts import get_spec_version
from prometheus_client.parser import text_string_to_metric_families


def check_openapi(paths):
    for path in paths:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        version = get_spec_version(spec)
        if version != versions.OPENAPIV31:
            sys.exit(f"{path}: detected {version}, not OpenAPI 3.1")
        validate(spec)  # raises with the first problem
        print(f"ok: {path} is a valid OpenAPI 3.1 document ({len(spec['paths'])} paths)")


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        content_type = response.headers["Content-Type"]
        text = response.read().decode()
    if not content_type.startswith("text/plain; version=0.0.4"):
        sys.exit(f"/metrics has Content-Type {content_type!r}, not the Prometheus text format")
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            samples[key] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def check_metrics(base):
    before = scrape(f"{base}/metrics")
    for _ in range(3):
        urllib.request.urlopen(f"{base}/healthz", timeout=10).read()
    after = scrape(f"{base}/metrics")
    series = dict(name="tessera_http_requests_total", route="/healthz", method="GET", status="200")
    name = series.pop("name")
    moved = value(after, name, **series) - value(before, name, **series)
    if moved != 3:
        sys.exit(f"tessera_http_requests_total for /healthz moved by {moved}, not 3")
    scraped = value(after, name, route="/metrics", method="GET", status="200")
    if scraped < 1:
        sys.exit("the first scrape was not counted")
    names = {key[0] for key in after}
    expected = {
        "tessera_http_requests_total",
        "tessera_http_request_duration_seconds_bucket",
        "tessera_http_request_duration_seconds_count",
        "tessera_sign_ins_total",
        "tessera_password_hash_queue_depth",
        "tessera_gate_cache_entries",
        "tessera_db_pool_connections",
        "tessera_db_pool_idle_connections",
    }
    missing = expected - names
    if missing:
        sys.exit(f"/metrics lacks {sorted(missing)}")
    print(f"ok: /metrics parses ({len(after)} samples) and its counters count")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "openapi":
        check_openapi(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "metrics":
        check_metrics(sys.argv[2])
    else:
        sys.exit(__doc__)
