"""The ``jobyard`` command: ``up`` (everything on one machine), ``api``,
``worker``, ``beat`` (the parts, for real deployments) and ``admin``; and for people,
``login``, ``jobs``, ``workspaces``, ``datasets`` (``jobyard.client.commands``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jobyard import embedded, runtime
from jobyard.schemas.settings import Settings, SettingsError, documentation

logger = logging.getLogger("jobyard")


def _settings(**overrides: Any) -> Settings:
    settings = Settings.from_env().replace(**{k: v for k, v in overrides.items() if v is not None})
    return settings.replace(data_dir=settings.data_dir.resolve())


# --- the parts --------------------------------------------------------------------


def cmd_api(args: argparse.Namespace) -> int:
    from gunicorn.app.base import BaseApplication

    settings = runtime.with_secrets(_settings(host=args.host, port=args.port))
    if settings.metrics_port:
        runtime.metrics_dir(settings, "api")
    from jobyard.api import create_app
    from jobyard.api.server import JsonErrorWorker
    from jobyard.api.services import services
    from jobyard.workers import telemetry

    probe = create_app(settings)  # fail fast on bad settings or an unreachable database
    services(probe).store.db.client.close()  # no MongoClient may cross the fork

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{settings.host}:{settings.port}")
            self.cfg.set("workers", settings.api_workers)
            self.cfg.set("threads", settings.api_threads)
            # gthread, with gunicorn's own 414/431/400 in the error shape
            self.cfg.set("worker_class", JsonErrorWorker)
            # in json, the app writes the access lines itself (api/observe.py)
            self.cfg.set("accesslog", None if settings.log_format == "json" else "-")
            self.cfg.set("control_socket_disable", True)
            if settings.metrics_port:
                port = settings.metrics_port
                self.cfg.set("when_ready", lambda _: telemetry.serve(port, settings.host))
                self.cfg.set("child_exit", lambda _, worker: telemetry.child_exited(worker.pid))

        def load(self) -> Any:
            # built in each worker: a MongoClient must not cross a fork
            return create_app(settings)

    Server().run()
    return 0


def _celery(settings: Settings) -> Any:
    from jobyard.workers.celery_app import create_celery

    return create_celery(runtime.with_secrets(settings))


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings.worker_metrics_port:
        runtime.metrics_dir(settings, "worker")
    from celery import signals

    from jobyard.workers import fleet, telemetry
    from jobyard.workers.celery_app import QUEUES

    app = _celery(settings)
    fleet.install(app, app.conf.jobyard_settings)
    if settings.worker_metrics_port:
        resolved = app.conf.jobyard_settings
        state = telemetry.StateCollector(resolved, list(QUEUES))
        telemetry.serve(settings.worker_metrics_port, settings.host, state)

        @signals.worker_process_shutdown.connect
        def _gone(pid: int = 0, **_: Any) -> None:
            telemetry.child_exited(pid)

    queues = args.queues or ",".join(QUEUES)
    argv = [
        "worker",
        "--loglevel",
        settings.log_level,
        "-Q",
        queues,
        "--concurrency",
        str(args.concurrency or settings.worker_concurrency),
    ]
    if args.beat:
        argv += ["--beat", "--schedule", str(settings.data_dir / "celerybeat-schedule")]
    app.worker_main(argv)
    return 0


def cmd_beat(args: argparse.Namespace) -> int:
    settings = _settings()
    app = _celery(settings)
    app.start(
        [
            "beat",
            "--loglevel",
            settings.log_level,
            "--schedule",
            str(settings.data_dir / "celerybeat-schedule"),
        ]
    )
    return 0


# --- everything on one machine ----------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    settings = _settings(host=args.host, port=args.port)
    data_dir = settings.data_dir
    if runtime.read_services(data_dir):
        print(f"jobyard is already running on {data_dir}", file=sys.stderr)
        return 1
    supervisor = embedded.Supervisor()
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        settings = _start_servers(settings, supervisor)
        settings = runtime.with_secrets(settings)
        api_url = f"http://{settings.host}:{settings.port}/api/v2"
        runtime.write_services(
            data_dir,
            {
                "mongo_uri": settings.mongo_uri or "",
                "redis_url": settings.redis_url or "",
                "api_url": api_url,
            },
        )
        env = {
            **os.environ,
            "JOBYARD_DATA_DIR": str(data_dir),
            "JOBYARD_MONGO_URI": settings.mongo_uri or "",
            "JOBYARD_REDIS_URL": settings.redis_url or "",
            "JOBYARD_HOST": settings.host,
            "JOBYARD_PORT": str(settings.port),
        }
        logs = data_dir / "logs"
        supervisor.add(embedded.start_jobyard(["api"], env, logs, "api"))
        supervisor.add(embedded.start_jobyard(["worker", "--beat"], env, logs, "worker"))
        embedded.wait_until(lambda: _ready(api_url), 60, "the API", supervisor.children[-2].proc)
        _greet(settings, api_url, logs)
        while not stopping:
            dead = supervisor.dead()
            if dead:
                names = ", ".join(f"{c.name} (exit {c.proc.returncode})" for c in dead)
                print(f"stopping: {names} died; see {logs}", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        supervisor.stop()
        runtime.clear_services(data_dir)


def _start_servers(settings: Settings, supervisor: embedded.Supervisor) -> Settings:
    if settings.mongo_uri is None:
        mongo = supervisor.add(embedded.start_mongo(settings.data_dir / "mongo"))
        settings = settings.replace(mongo_uri=mongo.url)
    if settings.redis_url is None:
        redis = supervisor.add(embedded.start_redis(settings.data_dir / "redis"))
        settings = settings.replace(redis_url=redis.url)
    return settings


def _ready(api_url: str) -> bool:
    with urllib.request.urlopen(f"{api_url}/health/readiness", timeout=2) as response:
        return bool(response.status == 200)


def _greet(settings: Settings, api_url: str, logs: Path) -> None:
    store = _connect(settings)
    lines = [f"jobyard is up: {api_url}  (OpenAPI: {api_url}/openapi.json, logs: {logs})"]
    lines.append(f"Dashboard: {api_url.removesuffix('/api/v2')}/ui/")
    if not store.accounts.org_exists("demo"):
        user = store.accounts.ensure_user("demo", "admin", is_admin=True)
        key = store.accounts.create_key(user)
        job_id = _submit_demo_job(api_url, key)
        lines += [
            "",
            "First start: created org 'demo' with an admin key (shown once):",
            f"  export BASE_URL={api_url} NGC_ORG_NAME=demo NGC_API_KEY={key}",
            "",
            f"and submitted the reference train job {job_id}; watch its epochs arrive:",
            '  TOKEN=$(curl -s -X POST $BASE_URL/login -d \'{"ngc_key": "\'$NGC_API_KEY\'", '
            '"ngc_org_name": "demo"}\' | jq -r .token)',
            f'  curl -s $BASE_URL/orgs/demo/jobs/{job_id}:events -H "Authorization: Bearer $TOKEN"',
            "or in the dashboard (sign in with org demo and that key), or with the CLI:",
            f"  jobyard login --url $BASE_URL --key $NGC_API_KEY --org demo && "
            f"jobyard jobs watch {job_id}",
        ]
    lines += ["", "More keys:  jobyard admin create-key --org ORG [--admin]", "Stop:  Ctrl-C"]
    print("\n".join(lines), flush=True)


def _submit_demo_job(api_url: str, key: str) -> str:
    """The main job, through the public API like any client: the reference
    trainer, paced so its epochs can be watched arriving."""

    def call(path: str, body: dict[str, Any] | None = None, token: str = "") -> Any:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{api_url}{path}", data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    token = call("/login", {"ngc_key": key, "ngc_org_name": "demo"})["token"]
    specs = call("/orgs/demo/jobs:schema?action=train", token=token)["default"]
    specs["train"]["min_epoch_seconds"] = 1.0
    body = {
        "kind": "experiment",
        "name": "demo_train",
        "network_arch": "classification_pyt",
        "action": "train",
        "specs": specs,
    }
    return str(call("/orgs/demo/jobs", body, token)["id"])


# --- admin --------------------------------------------------------------------------


def _connect(settings: Settings) -> Any:
    from jobyard.store import connect
    from jobyard.store.crypto import Cipher

    assert settings.mongo_uri and settings.encryption_key
    store = connect(settings.mongo_uri, settings.mongo_db, Cipher(settings.encryption_key))
    store.ensure_indexes()
    return store


@contextlib.contextmanager
def _admin_store() -> Iterator[Any]:
    """The store of the deployment: the configured MongoDB, the running
    ``jobyard up`` on this data dir, or its embedded data started just for us."""
    settings = runtime.with_secrets(_settings())
    if settings.mongo_uri is None:
        running = runtime.read_services(settings.data_dir)
        if running:
            settings = settings.replace(mongo_uri=running["mongo_uri"])
    if settings.mongo_uri is not None:
        store = _connect(settings)
        try:
            yield store
        finally:
            store.db.client.close()
        return
    mongo = embedded.start_mongo(settings.data_dir / "mongo")
    try:
        store = _connect(settings.replace(mongo_uri=mongo.url))
        try:
            yield store
        finally:
            store.db.client.close()
    finally:
        mongo.stop()


def cmd_create_key(args: argparse.Namespace) -> int:
    with _admin_store() as store:
        user = store.accounts.ensure_user(args.org, args.user, args.email, is_admin=args.admin)
        print(store.accounts.create_key(user))
    return 0


def cmd_revoke_key(args: argparse.Namespace) -> int:
    from jobyard.store.accounts import split_key

    parts = split_key(args.key)
    key_id = parts[0] if parts else args.key
    with _admin_store() as store:
        if not store.accounts.revoke_key(key_id):
            print(f"no key {key_id}", file=sys.stderr)
            return 1
    print(f"revoked {key_id}")
    return 0


def _limit(raw: str) -> int | None:
    """A quota value: a whole number, or ``none`` for no limit."""
    if raw.lower() == "none":
        return None
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError("a limit is 0 or more, or none")
    return value


def _target(raw: str) -> str:
    from jobyard.schemas.job import BACKEND_TARGET

    if not BACKEND_TARGET.match(raw):
        raise argparse.ArgumentTypeError("process, kubernetes, slurm or lepton[:<workspace id>]")
    return raw


def cmd_quota(args: argparse.Namespace) -> int:
    """Show an org's quota, or change what is given (``none`` lifts a limit); with
    ``--backend``, the limits on that backend target."""
    with _admin_store() as store:
        quota = store.quotas.get(args.org)
        limits = quota
        if args.backend is not None:
            limits = next((e for e in quota["backends"] if e["backend"] == args.backend), {})
            if not limits:
                limits = {"backend": args.backend, "max_running_jobs": None, "max_gpus": None}
                quota["backends"].append(limits)
        for name in ("max_running_jobs", "max_gpus"):
            if getattr(args, name) is not _UNSET:
                limits[name] = getattr(args, name)
        quota["backends"] = [
            e for e in quota["backends"] if (e["max_running_jobs"], e["max_gpus"]) != (None, None)
        ]
        if quota != store.quotas.get(args.org):
            quota = store.quotas.set(args.org, quota)
    print(json.dumps({"org": args.org, **quota}))
    return 0


_UNSET = object()


def cmd_maintenance(args: argparse.Namespace) -> int:
    from jobyard.backends.factory import Resources
    from jobyard.backends.storage import StorageError
    from jobyard.store.backups import BackupError
    from jobyard.workers import maintenance

    only_org = getattr(args, "only_org", None)
    settings = _settings()
    try:
        with _admin_store() as store:
            summary = maintenance.command(
                store,
                Resources(settings, store.workspaces),
                args.admin,
                args.name,
                workspace=args.workspace,
                org=args.org,
                directory=args.dir,
                only_org=only_org,
            )
    except (BackupError, StorageError) as e:
        print(f"jobyard: {args.admin} failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"status": "Done", "action": args.admin, **summary}, default=str))
    return 0


def cmd_workloads_import(args: argparse.Namespace) -> int:
    """Validate every entry of the file first, then create or replace each one."""
    import yaml

    from jobyard.schemas.catalog import GLOBAL, InvalidEntry, load_entries
    from jobyard.store.errors import Conflict

    try:
        document = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
        entries = load_entries(document, args.org or GLOBAL)
    except (OSError, yaml.YAMLError) as e:
        print(f"jobyard: cannot read {args.file}: {e}", file=sys.stderr)
        return 1
    except InvalidEntry as e:
        print(f"jobyard: {args.file}: nothing imported:", file=sys.stderr)
        for line in e.problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    with _admin_store() as store:
        for entry in entries:
            try:
                doc, created = store.catalog.put(entry)
            except Conflict as e:
                print(f"jobyard: {e}", file=sys.stderr)
                return 1
            verb = "added" if created else f"updated (version {doc.get('version')})"
            print(f"{verb}: {entry.network_arch}/{entry.name} id {doc['_id']} ({entry.scope})")
    return 0


def cmd_workloads_export(args: argparse.Namespace) -> int:
    """The entries as an import file: global ones, or an org's with --org."""
    import yaml

    from jobyard.schemas.catalog import GLOBAL

    with _admin_store() as store:
        docs = [
            d
            for d in store.catalog.visible(args.org)
            if (args.builtin or not d.get("builtin")) and d["scope"] == (args.org or GLOBAL)
        ]
        entries = [json.loads(d["entry"]) for d in docs]
    text = yaml.safe_dump({"base_experiments": entries}, sort_keys=False)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    print("| variable | default | meaning |\n|---|---|---|")
    for variable, default, doc in documentation():
        print(f"| `{variable}` | `{default}` | {doc} |")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jobyard", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up", help="run everything on this machine (embedded MongoDB-wire and Redis)"
    )
    api = sub.add_parser("api", help="run the HTTP API (gunicorn)")
    for cmd in (up, api):
        cmd.add_argument("--host")
        cmd.add_argument("--port", type=int)
    up.set_defaults(func=cmd_up)
    api.set_defaults(func=cmd_api)
    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--queues", help="comma-separated queues (default: all)")
    worker.add_argument("--concurrency", type=int)
    worker.add_argument("--beat", action="store_true", help="also run the periodic scheduler")
    worker.set_defaults(func=cmd_worker)
    sub.add_parser("beat", help="run the periodic scheduler (exactly one)").set_defaults(
        func=cmd_beat
    )
    sub.add_parser("config", help="print the settings table").set_defaults(func=cmd_config)
    admin = sub.add_parser("admin", help="keys, the catalog, maintenance").add_subparsers(
        dest="admin", required=True
    )
    key = admin.add_parser("create-key", help="create an org (if needed), a user and an API key")
    key.add_argument("--org", required=True)
    key.add_argument("--user", default="admin")
    key.add_argument("--email", default="")
    key.add_argument("--admin", action="store_true")
    key.set_defaults(func=cmd_create_key)
    revoke = admin.add_parser("revoke-key", help="revoke an API key (the key or its id)")
    revoke.add_argument("key")
    revoke.set_defaults(func=cmd_revoke_key)
    quota = admin.add_parser("quota", help="show or set an org's running-jobs and GPU limits")
    quota.add_argument("--org", required=True)
    quota.add_argument(
        "--backend", type=_target, help="limits on this backend target (as jobs show it)"
    )
    for flag in ("max-running-jobs", "max-gpus"):
        quota.add_argument(f"--{flag}", type=_limit, default=_UNSET, metavar="N|none")
    quota.set_defaults(func=cmd_quota)
    workloads = admin.add_parser("workloads", help="the workload catalog").add_subparsers(
        dest="workloads", required=True
    )
    imported = workloads.add_parser("import", help="add or update catalog entries from YAML")
    imported.add_argument("file", help="one entry, a list, or base_experiments: [...]")
    imported.add_argument("--org", help="the org's own entries (default: global, every org)")
    imported.set_defaults(func=cmd_workloads_import)
    exported = workloads.add_parser("export", help="write catalog entries as YAML")
    exported.add_argument("--org", help="the org's own entries (default: global ones)")
    exported.add_argument("--builtin", action="store_true", help="include built-in entries")
    exported.add_argument("-o", "--output", help="file to write (default: stdout)")
    exported.set_defaults(func=cmd_workloads_export)
    for action, text in (
        ("backup", "write a compressed dump of jobyard's state"),
        ("restore", "replace jobyard's state with a dump (its scope only)"),
    ):
        cmd = admin.add_parser(action, help=text)
        cmd.add_argument("name", help="object name in the workspace, or file name in --dir")
        cmd.add_argument("--workspace", help="workspace id whose bucket holds the dump")
        cmd.add_argument("--org", help="the workspace's org")
        cmd.add_argument("--dir", type=Path, help="a local directory instead of a workspace")
        if action == "backup":
            cmd.add_argument("--only-org", help="dump this org only (default: everything)")
        cmd.set_defaults(func=cmd_maintenance)
    _client_commands(sub)
    return p


def _client_commands(sub: Any) -> None:
    """The client commands need the ``client`` extra (requests, rich); without it they
    say how to get it rather than being unknown."""
    try:
        from jobyard.client import commands
    except ImportError as e:
        missing = str(e)

        def explain(_: argparse.Namespace) -> int:
            print(f"jobyard: {missing}; pip install 'jobyard[client]'", file=sys.stderr)
            return 2

        for name in ("login", "jobs", "workspaces", "datasets"):
            sub.add_parser(name, help="(needs jobyard[client])").set_defaults(func=explain)
        return
    commands.register(sub)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        env = Settings.from_env()
    except SettingsError as e:
        print(f"jobyard: bad setting {e}", file=sys.stderr)
        return 2
    from jobyard.workers import logs

    logs.configure(env.log_level, env.log_format)
    try:
        result: int = args.func(args)
        return result
    except SettingsError as e:
        print(f"jobyard: bad setting {e}", file=sys.stderr)
        return 2
    except embedded.EmbeddedError as e:
        print(f"jobyard: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
