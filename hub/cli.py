"""The ``hub`` command line."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click
import yaml

from hub.config import HubConfig
from hub.context import HubContext, build_context


def _ctx() -> HubContext:
    return build_context(HubConfig.from_env())


def _setup_logging(level: str) -> None:
    numeric = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(level=numeric, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic narrates every plugin it sets up at INFO; only its warnings matter to an operator
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def _handler(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


@click.group()
@click.option("--log-level", default="INFO", envvar="GRIDHUB_LOG_LEVEL", show_default=True)
def main(log_level: str) -> None:
    """GridHub: one case per street incident across department systems."""
    _setup_logging(log_level)


@main.command()
def keygen() -> None:
    """Print a new GRIDHUB_SECRET_KEY (Fernet key)."""
    from hub.crypto import generate_key

    click.echo(generate_key())


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration (Alembic) to GRIDHUB_DATABASE_URL."""
    from hub.migrate import upgrade

    cfg = HubConfig.from_env()
    cfg.var_path.mkdir(parents=True, exist_ok=True)
    upgrade(cfg.database_url)
    click.echo("schema up to date")


@main.group()
def plugins() -> None:
    """Installed plugins."""


@plugins.command("list")
def plugins_list() -> None:
    """Plugins with version, hooks and system types."""
    from hub.plugin.manager import describe_plugins

    ctx = _ctx()
    for row in describe_plugins(ctx.pm):
        types = [t.key for t in ctx.registry.all() if ctx.registry.owner(t.key) == row["name"]]
        click.echo(f"{row['name']:<40} {row['version']:<8} types={','.join(types) or '-'} "
                   f"hooks={','.join(row['hooks'])}")


@main.group()
def systems() -> None:
    """Connected department systems."""


@systems.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def systems_import(path: Path) -> None:
    """Create or update systems from a YAML file (a list, or {systems: [...]})."""
    from hub.services.mapping_versions import ensure_default_mapping
    from hub.services.systems import upsert_system

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = data.get("systems", []) if isinstance(data, dict) else data
    ctx = _ctx()
    with ctx.db.session() as s:
        for item in items:
            system = upsert_system(ctx, s, item)
            ensure_default_mapping(ctx, s, system)
            click.echo(f"imported {system.key} ({system.plugin})")


@systems.command("export")
def systems_export() -> None:
    """Print every system as YAML; credentials are masked as ***."""
    from hub.services.systems import export_system, list_systems

    ctx = _ctx()
    with ctx.db.read_session() as s:
        rows = [export_system(ctx, x) for x in list_systems(s)]
    click.echo(yaml.safe_dump({"systems": rows}, allow_unicode=True, sort_keys=False))


@main.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.argument("name")
@click.option("--role", default="admin", show_default=True)
@click.option("--scope", default="", help="jurisdiction: grid-code prefix ('' = everything)")
def tokens_create(name: str, role: str, scope: str) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from hub.services.tokens import create_token

    ctx = _ctx()
    with ctx.db.session() as s:
        token = create_token(s, name, role, scope)
    click.echo(token)


@main.group()
def users() -> None:
    """Console accounts."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "operator", "department", "grid_worker", "auditor"]),
              required=True)
@click.option("--scope", default="", help="jurisdiction: grid-code prefix (district 6 / street 9 / community 12 / "
                                        "grid 15 digits); empty = everything")
@click.option("--display-name", default="")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input (scripts)")
def users_create(username: str, role: str, scope: str, display_name: str, password_stdin: bool) -> None:
    """Create a console account (the password is asked for, never an argument)."""
    from hub.services.accounts import AccountError, create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = str(click.prompt("password", hide_input=True, confirmation_prompt=True))
    try:
        with _ctx().db.session() as s:
            create_user(s, username=username, password=password, role=role, scope=scope,
                        display_name=display_name, actor="cli")
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created {username} ({role}{', ' + scope if scope else ''})")


@main.command()
@click.option("--queue", "queues", type=click.Choice(["all", "ingest", "outbound"]), default="all",
              show_default=True, help="ingest: apply inbound events; outbound: deliver the outbox; all: both")
def worker(queues: str) -> None:
    """Consume the ingest and outbound queues (kombu); sweep for lost messages and due deliveries."""
    from hub.workers.ingest_worker import run_worker
    from hub.workers.outbox_worker import run_outbox_worker

    ctx = _ctx()
    stop = _stop_event()
    if queues == "ingest":
        run_worker(ctx, stop)
    elif queues == "outbound":
        run_outbox_worker(ctx, stop)
    else:  # one process, two consumers: delivery in a thread, ingest in the main thread
        delivery = threading.Thread(target=run_outbox_worker, args=(ctx, stop), name="outbox-worker", daemon=True)
        delivery.start()
        run_worker(ctx, stop)
        stop.set()
        delivery.join(timeout=10)


@main.command()
@click.option("--once", is_flag=True, help="one poll of each system, then exit")
@click.option("--system", "only", multiple=True, help="system key (repeatable)")
def poll(once: bool, only: tuple[str, ...]) -> None:
    """Read the pulled systems (12345 feed, 数字城管, 综合执法) on their intervals."""
    from hub.workers.poller import poll_once, pulled_systems, run_poller

    ctx = _ctx()
    if once:
        for key in only or pulled_systems(ctx):
            report = poll_once(ctx, key)
            click.echo(json.dumps({"system": key, "read": report.read, "stored": report.stored}))
        return
    stop = _stop_event()
    threads = run_poller(ctx, stop, list(only) or None)
    if not threads:
        click.echo("no enabled pulled systems", err=True)
        sys.exit(1)
    stop.wait()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--threads", default=8, show_default=True)
def serve(host: str, port: int, threads: int) -> None:
    """Serve the API, webhooks and console (waitress)."""
    import waitress

    from hub.app import create_app

    waitress.serve(create_app(), host=host, port=port, threads=threads)


@main.group()
def inbound() -> None:
    """The inbox."""


@inbound.command("replay")
@click.option("--system", default=None)
@click.argument("ids", nargs=-1, type=int)
def inbound_replay(system: str | None, ids: tuple[int, ...]) -> None:
    """Re-process quarantined events (all, by system, or by id) with the active mapping."""
    from hub.services.ingest import replay_quarantined

    click.echo(json.dumps(replay_quarantined(_ctx(), ids=list(ids) or None, system_key=system)))


@main.group()
def sync() -> None:
    """Status sync: health, reconciliation, dead letters."""


@sync.command("reconcile")
@click.option("--system", "systems_", multiple=True, help="system key (repeatable); default: every enabled system")
@click.option("--limit", default=500, show_default=True, help="records re-read per system")
def sync_reconcile(systems_: tuple[str, ...], limit: int) -> None:
    """Re-read the linked records of unfinished cases and repair drift (prints one JSON line per system)."""
    from sqlalchemy import select

    from hub.models import System
    from hub.services.reconcile import reconcile_system

    ctx = _ctx()
    keys = list(systems_)
    if not keys:
        with ctx.db.read_session() as s:
            keys = list(s.scalars(select(System.key).where(System.enabled.is_(True)).order_by(System.key)))
    for key in keys:
        click.echo(json.dumps(reconcile_system(ctx, key, limit=limit).as_dict(), ensure_ascii=False))


@sync.command("health")
def sync_health() -> None:
    """Link health of every system (JSON)."""
    from hub.services.health import system_health
    from hub.services.systems import list_systems

    with _ctx().db.read_session() as s:
        click.echo(json.dumps([system_health(s, x) for x in list_systems(s)], ensure_ascii=False, indent=2))


@sync.command("replay")
@click.option("--system", default=None)
@click.argument("ids", nargs=-1, type=int)
def sync_replay(system: str | None, ids: tuple[int, ...]) -> None:
    """Dead letters back to pending (all, by system, or by id)."""
    from hub.services.outbox import replay

    click.echo(json.dumps({"replayed": replay(_ctx(), ids=list(ids) or None, system_key=system, actor="cli")}))


@main.group()
def dedup() -> None:
    """Cross-system deduplication tools."""


@dedup.command("eval")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="canonical ticket JSONL (docs/dedup-jsonl.md) with a cluster field")
@click.option("--database", default=None, help="store to replay into (default: a throwaway SQLite file)")
@click.option("--model", "model_path", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="dedup model YAML (default: GRIDHUB_DEDUP_MODEL or the shipped model)")
@click.option("--explicit-only", is_flag=True, help="baseline: explicit cross-references only, no similarity")
def dedup_eval(input_path: Path, database: str | None, model_path: Path | None, explicit_only: bool) -> None:
    """Replay tickets in time order through the real engine; print pairwise and B-cubed scores."""
    from hub.evaluation.replay import EvalInputError, read_jsonl, replay

    logging.getLogger("hub").setLevel(logging.WARNING)
    try:
        report = replay(read_jsonl(input_path), database_url=database, model_path=model_path,
                        explicit_only=explicit_only)
    except EvalInputError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in report.lines():
        click.echo(line)


@dedup.command("train")
@click.option("--input", "input_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="labelled canonical ticket JSONL (docs/dedup-jsonl.md, with cluster)")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="where to write the model YAML (use it with GRIDHUB_DEDUP_MODEL)")
@click.option("--precision", default=0.99, show_default=True, help="target precision of automatic links")
@click.option("--review-share", default=0.04, show_default=True, help="largest share of tickets sent to review")
def dedup_train(input_path: Path, out_path: Path, precision: float, review_share: float) -> None:
    """Learn windows, feature weights and thresholds from labelled tickets."""
    from hub.crypto import SecretBox, generate_key
    from hub.dedup.model import load_model
    from hub.dedup.train import link_precision, train
    from hub.evaluation.metrics import bcubed
    from hub.evaluation.replay import EvalInputError, read_jsonl
    from mappings import load_taxonomy

    try:
        rows = read_jsonl(input_path)
    except EvalInputError as exc:
        raise click.ClickException(str(exc)) from exc
    if not rows or any(not r.get("cluster") for r in rows):
        raise click.ClickException("every line needs a cluster label to train on")
    hasher = SecretBox(generate_key()).keyed_hash  # phones only need to compare equal within this run
    model, result, data = train(rows, load_taxonomy(), hasher, base=load_model(), precision=precision,
                                review_share=review_share, version=f"trained:{input_path.name}")
    model.save(out_path, header=f"# trained by `hub dedup train --input {input_path.name}` on {len(rows)} tickets")
    scores = bcubed(result.predicted, {d.key: d.cluster for d in data})
    link_p, links = link_precision(result)
    click.echo(f"model written to {out_path}")
    click.echo(f"on the training data: auto-link precision {link_p:.4f} ({links} links), "
               f"review share {result.share('review'):.3f}, B-cubed P {scores.precision:.4f} "
               f"R {scores.recall:.4f} F1 {scores.f1:.4f}")
    click.echo(f"thresholds: default auto {model.default_thresholds.auto} review {model.default_thresholds.review}"
               + "".join(f"; {g} auto {t.auto}" for g, t in sorted(model.thresholds.items())))


@main.command()
@click.option("--port", default=8000, show_default=True)
@click.option("--sandbox-port", default=9101, show_default=True)
@click.option("--rate", default=6.0, show_default=True, help="sandbox incidents per minute")
def demo(port: int, sandbox_port: int, rate: float) -> None:
    """Run everything on the embedded default: sandbox systems, traffic, web, workers, poller."""
    from hub.demo import run_demo

    sys.exit(run_demo(port=port, sandbox_port=sandbox_port, rate=rate))


def _add_work_commands() -> None:
    from hub.cli_work import metrics, tasks

    main.add_command(tasks)
    main.add_command(metrics)


_add_work_commands()

if __name__ == "__main__":
    main()
