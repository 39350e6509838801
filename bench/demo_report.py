"""Figures of a running demo (`make run`): what the sandbox systems produced, what the hub
ingested, what it quarantined and why.

    make run &                      # let it play, e.g. 10 minutes
    .venv/bin/python -m bench.demo_report [--hub http://127.0.0.1:8000] [--sandbox-port 9101]
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import Any

import requests


def sandbox_counts(port: int) -> dict[str, int]:
    base = {key: f"http://127.0.0.1:{port + i}/_sandbox/state" for i, key in
            enumerate(("hotline12345", "police_patrol", "city_management", "law_enforcement"))}
    states = {key: requests.get(url, timeout=10).json() for key, url in base.items()}
    return {
        "hotline12345 work orders (visible to the gateway)": len(states["hotline12345"]["visible"]),
        "hotline12345 changes (feed items)": states["hotline12345"]["changes"]["count"],
        "police_patrol incidents": len(states["police_patrol"]["incidents"]),
        "city_management cases": len(states["city_management"]["cases"]),
        "law_enforcement cases": len(states["law_enforcement"]["cases"]),
    }


def hub_counts(hub: str, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    systems = requests.get(f"{hub}/api/v1/systems", headers=headers, timeout=10).json()
    cases = requests.get(f"{hub}/api/v1/cases", params={"page_size": 1}, headers=headers, timeout=10).json()
    multi = requests.get(f"{hub}/api/v1/cases", params={"page_size": 1, "multi_system": "true"},
                         headers=headers, timeout=30).json()
    reasons: collections.Counter[str] = collections.Counter()
    page = 1
    while True:
        q = requests.get(f"{hub}/api/v1/inbound-events", params={"status": "quarantined", "page": page,
                                                                  "page_size": 500},
                         headers=headers, timeout=30).json()
        for item in q["items"]:
            reasons[f"{item['system']}: {item['error_kind']}: {item['error_reason'][:120]}"] += 1
        if page * 500 >= q["total"]:
            break
        page += 1
    return {"systems": {s["key"]: s["counts"] for s in systems}, "cases": cases["total"],
            "multi_system_cases": multi["total"], "quarantine_reasons": dict(reasons)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub", default="http://127.0.0.1:8000")
    parser.add_argument("--sandbox-port", type=int, default=9101)
    parser.add_argument("--token-file", default="var/admin.token")
    args = parser.parse_args()
    token = Path(args.token_file).read_text().strip()
    report = {"sandbox": sandbox_counts(args.sandbox_port), "hub": hub_counts(args.hub, token)}
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
