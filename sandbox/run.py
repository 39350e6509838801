"""Start the four simulators in one process (and, if asked, the traffic generator).

``python -m sandbox.run [--host 127.0.0.1] [--base-port 9101] [--traffic] [--rate 6] [--seed 1]
[--police-webhook URL] [--time-scale 60]`` serves 12345, police, 数字城管 and 综合执法 on four
consecutive ports and stops cleanly on SIGINT/SIGTERM. Tests and the hub's demo launcher call
:func:`start_all` with ``base_port=0`` (ephemeral ports; ``cluster.urls`` has the real ones).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from sandbox.traffic import TrafficGenerator

log = logging.getLogger(__name__)

# system key → (module, path of its base URL); ports in this order from base_port.
SYSTEMS: tuple[tuple[str, str], ...] = (
    ("hotline12345", "/openapi/v2"),
    ("police_patrol", ""),
    ("city_management", ""),
    ("law_enforcement", "/zfba/ws/exchange"),
)
POLICE_SECRET = "police-demo-secret"


@dataclass
class SandboxCluster:
    """The four running simulators: base URLs as the hub's systems config wants them, apps, servers."""

    urls: dict[str, str]
    apps: dict[str, Flask]
    servers: dict[str, BaseWSGIServer] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)
    traffic: TrafficGenerator | None = None
    time_scale: float = 1.0
    _traffic_stop: threading.Event = field(default_factory=threading.Event)

    @property
    def control_urls(self) -> dict[str, str]:
        """``http://host:port`` of each simulator (its ``/_sandbox/...`` endpoints)."""
        return {key: f"http://{_url_host(s.host)}:{s.port}" for key, s in self.servers.items()}

    def sim(self, key: str) -> Any:
        """The simulator object of one system (``app.extensions["sandbox"]``)."""
        return self.apps[key].extensions["sandbox"]

    def set_police_webhook(self, url: str | None, secret: str = POLICE_SECRET) -> None:
        """Point the police simulator's webhook deliveries at ``url`` (None: stop delivering)."""
        self.sim("police_patrol").dispatcher.configure(url, secret)

    def start_traffic(self, *, seed: int = 1, rate_per_min: float = 6.0, time_scale: float | None = None,
                      clock: Callable[[], datetime] | None = None, burst: int = 0) -> TrafficGenerator:
        """Run a traffic generator against this cluster in a daemon thread (stopped by :meth:`stop`)."""
        options: dict[str, Any] = {"time_scale": time_scale or self.time_scale}
        if clock is not None:
            options["clock"] = clock
        self.traffic = TrafficGenerator(self.urls, seed=seed, rate_per_min=rate_per_min, **options)
        if burst:
            self.traffic.play_burst(burst)
        self._traffic_stop.clear()
        thread = threading.Thread(target=self.traffic.run, args=(self._traffic_stop,),
                                  name="sandbox-traffic", daemon=True)
        thread.start()
        self.threads.append(thread)
        return self.traffic

    def stop_traffic(self) -> None:
        """Stop the traffic generator's thread (the simulators keep running)."""
        self._traffic_stop.set()
        for thread in [t for t in self.threads if t.name == "sandbox-traffic"]:
            thread.join(timeout=5)
            self.threads.remove(thread)

    def stop(self) -> None:
        """Stop traffic, the police dispatcher and the four servers; wait for their threads."""
        self.stop_traffic()
        for app in self.apps.values():
            dispatcher = getattr(app.extensions.get("sandbox"), "dispatcher", None)
            if dispatcher is not None and hasattr(dispatcher, "stop"):
                dispatcher.stop()
        for server in self.servers.values():
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=5)
        self.threads.clear()

    def __enter__(self) -> SandboxCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _url_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def _accepted(factory: Callable[..., Flask], options: Mapping[str, Any]) -> dict[str, Any]:
    """The options ``factory`` takes (each simulator takes its own subset)."""
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in params}


def build_apps(*, time_scale: float = 1.0, clock: Callable[[], datetime] | None = None,
               police_webhook: str | None = None, police_secret: str = POLICE_SECRET,
               law_latency_s: float = 0.2,
               options: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Flask]:
    """Create the four simulator apps with the demo defaults; ``options[key]`` overrides per system."""
    common: dict[str, Any] = {"time_scale": time_scale}
    if clock is not None:
        common["clock"] = clock
    specific: dict[str, dict[str, Any]] = {
        "police_patrol": {"webhook_url": police_webhook, "webhook_secret": police_secret},
        "law_enforcement": {"latency_s": law_latency_s},
    }
    apps = {}
    for key, _ in SYSTEMS:
        factory = importlib.import_module(f"sandbox.{key}").create_app
        wanted = {**common, **specific.get(key, {}), **dict((options or {}).get(key, {}))}
        apps[key] = factory(**_accepted(factory, wanted))
    return apps


def start_all(host: str = "127.0.0.1", base_port: int = 9101, **opts: Any) -> SandboxCluster:
    """Serve the four simulators on ``base_port``…``base_port+3`` (0: ephemeral ports).

    ``opts`` go to :func:`build_apps` (``time_scale``, ``clock``, ``police_webhook``,
    ``police_secret``, ``law_latency_s``, ``options``).
    """
    apps = build_apps(**opts)
    cluster = SandboxCluster(urls={}, apps=apps, time_scale=float(opts.get("time_scale", 1.0)))
    try:
        for index, (key, base_path) in enumerate(SYSTEMS):
            port = base_port + index if base_port else 0
            server = make_server(host, port, apps[key], threaded=True)
            cluster.servers[key] = server
            cluster.urls[key] = f"http://{_url_host(host)}:{server.port}{base_path}"
            # a short poll keeps shutdown (tests start and stop clusters often) well under a second
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                      name=f"sandbox-{key}", daemon=True)
            thread.start()
            cluster.threads.append(thread)
    except OSError:
        cluster.stop()
        raise
    return cluster


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.run", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--base-port", type=int, default=9101)
    parser.add_argument("--traffic", action="store_true", help="play incidents into the simulators")
    parser.add_argument("--rate", type=float, default=6.0, help="incidents per minute")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--burst", type=int, default=0, help="seed this many incidents at start")
    parser.add_argument("--police-webhook", default=None, help="the hub's police webhook URL")
    parser.add_argument("--police-secret", default=POLICE_SECRET)
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="divide story delays (webhook retries, life-cycle steps) by this")
    parser.add_argument("--truth", default=None, help="write the traffic's ground truth here on exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns the demo
    cluster = start_all(args.host, args.base_port, time_scale=args.time_scale,
                        police_webhook=args.police_webhook, police_secret=args.police_secret)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for key, url in cluster.urls.items():
        print(f"{key:16s} {url}", flush=True)
    if args.police_webhook:
        print(f"police webhook   → {args.police_webhook}", flush=True)
    if args.traffic or args.burst:
        cluster.start_traffic(seed=args.seed, rate_per_min=args.rate if args.traffic else 0.0,
                              burst=args.burst)
        print(f"traffic          {args.rate}/min, seed {args.seed}, time scale {args.time_scale}",
              flush=True)
    while not stop.wait(1.0):
        pass
    traffic = cluster.traffic
    if traffic is not None:
        cluster.stop_traffic()
        print(f"traffic summary  {traffic.summary()}", flush=True)
        if args.truth:
            traffic.refresh_statuses()
            traffic.dump_truth(args.truth)
    cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
