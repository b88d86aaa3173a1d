"""``jobyard login``, ``jobyard jobs ...``, ``jobyard workspaces ...``, ``jobyard
datasets ...``: the CLI for people, a thin layer over the SDK. Tables and bars on a
terminal, ``--output json`` for scripts, the job's final state as ``jobs watch``'s exit
code (``progress.EXIT_CODES``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import Any

import yaml

from jobyard.client import config, render
from jobyard.client.api import Client, Job
from jobyard.client.errors import JobyardError
from jobyard.client.progress import EXIT_CODES, of_job

JOB_COLUMNS = ("id", "name", "action", "network_arch", "status", "job_details.epoch", "created_on")
LIST_COLUMNS = {
    "workspaces": ("id", "name", "cloud_type", "created_on"),
    "datasets": ("id", "name", "type", "format", "status", "created_on"),
    "models": ("id", "name", "version", "team", "state", "network_arch", "created_on"),
    "services": ("id", "name", "status", "model", "requests_served", "restarts", "message"),
}


def _common() -> argparse.ArgumentParser:
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--url", help="jobyard's address (JOBYARD_URL)")
    shared.add_argument("--key", help="your API key (NGC_API_KEY)")
    shared.add_argument("--org", help="your org (NGC_ORG_NAME)")
    shared.add_argument("--output", choices=("table", "json"), default="table")
    return shared


def _client(args: argparse.Namespace) -> Client:
    target = config.resolve({"url": args.url, "key": args.key, "org": args.org})
    return Client(target.url, target.key, target.org)


def _emit(args: argparse.Namespace, data: Any, shown: Callable[[], Any]) -> None:
    if args.output == "json":
        print(json.dumps(data, indent=2, default=str))
    else:
        render.console().print(shown())


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except config.ConfigError as e:
            print(f"jobyard: {e}", file=sys.stderr)
            return 2
        except JobyardError as e:
            print(f"jobyard: error {e.error_code}: {e.error_desc}", file=sys.stderr)
            if e.errors:
                print(json.dumps(e.errors, indent=2), file=sys.stderr)
            return 1

    return wrapper


def cmd_login(args: argparse.Namespace) -> int:
    target = config.resolve({"url": args.url, "key": args.key, "org": args.org})
    with Client(target.url, target.key, target.org) as jy:
        jy.session.login()
        user = jy.session.user_id
    where = config.save(target)
    print(f"logged in to {target.url} as user {user} of org {target.org}; saved to {where}")
    return 0


def _set(body: dict[str, Any], assignment: str) -> None:
    """``specs.train.num_epochs=5``: a dotted path and a YAML value."""
    path, sep, raw = assignment.partition("=")
    if not sep or not path:
        raise config.ConfigError(f"--set takes path=value, got {assignment!r}")
    node = body
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise config.ConfigError(f"--set {path}: {part} is not an object")
    node[leaf] = yaml.safe_load(raw)


def cmd_submit(args: argparse.Namespace) -> int:
    """The file's and ``--set``'s ``specs`` are applied over the default specs; a
    ``template_id`` job takes the template's instead."""
    body: dict[str, Any] = {}
    if args.file:
        loaded = yaml.safe_load(Path(args.file).read_text()) or {}
        if not isinstance(loaded, dict):
            raise config.ConfigError(f"{args.file} holds no job request (a mapping)")
        body.update(loaded)
    for flag in ("kind", "action", "network_arch", "name", "template_id"):
        if getattr(args, flag):
            body[flag] = getattr(args, flag)
    for assignment in args.set or []:
        _set(body, assignment)
    with _client(args) as jy:
        job = jy.jobs.submit(body, over_defaults="template_id" not in body)
        if args.output == "json" and not args.watch:
            print(json.dumps(job.doc, indent=2))
        elif not args.watch:
            print(job.id)
        return _watch([job], args) if args.watch else 0


def _watch(jobs: list[Job], args: argparse.Namespace) -> int:
    """Follow jobs to their end; the exit code of the worst final state."""
    if args.output == "json":
        for job in jobs:
            job.wait(poll=args.poll)
        print(json.dumps([j.doc for j in jobs], indent=2))
    else:
        with render.live_progress(jobs) as update:
            waiting = list(jobs)
            while waiting:
                for job in list(waiting):
                    seen = job.refresh().progress()
                    update(job, seen)
                    if seen.finished:
                        waiting.remove(job)
                if waiting:
                    import time

                    time.sleep(args.poll)
        for job in jobs:
            print(f"{job.id} {job.status}: {of_job(job.doc).message}")
    return max(EXIT_CODES.get(j.status, 1) for j in jobs)


def cmd_watch(args: argparse.Namespace) -> int:
    with _client(args) as jy:
        return _watch([jy.jobs.get(i) for i in args.job_ids], args)


def cmd_list(args: argparse.Namespace) -> int:
    filters: dict[str, Any] = {}
    for name in ("status", "network_arch", "action", "search"):
        if getattr(args, name, None):
            filters[name] = getattr(args, name)
    if args.filter:
        filters["filterBy"] = args.filter
    with _client(args) as jy:
        docs = [j.doc for j in islice(jy.jobs.list(**filters), args.limit)]
    _emit(args, docs, lambda: render.table(docs, JOB_COLUMNS, f"{len(docs)} jobs"))
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    with _client(args) as jy:
        doc = jy.jobs.get(args.job_id).doc
    progress = of_job(doc)
    rows = [{"field": k, "value": doc.get(k)} for k in ("id", "name", "kind", "action")]
    rows += [{"field": k, "value": doc.get(k)} for k in ("network_arch", "status", "workspace")]
    rows += [{"field": "progress", "value": progress.summary()}]
    rows += [{"field": "message", "value": progress.message}]
    _emit(args, doc, lambda: render.table(rows, ("field", "value"), f"job {args.job_id}"))
    return 0


TRIAL_COLUMNS = (
    "experiment_number",
    "status",
    "outcome",
    "metric_value",
    "epochs",
    "pruned_at_epoch",
    "exploited_from",
    "params",
)


def cmd_trials(args: argparse.Namespace) -> int:
    """An AutoML search's trials, a row each, and its best so far."""
    with _client(args) as jy:
        doc = jy.jobs.get(args.job_id).doc
    search = (doc.get("job_details") or {}).get("automl")
    if not search:
        render.console(stderr=True).print(f"job {args.job_id} is not an AutoML search")
        return 1
    best = search.get("best") or {}
    title = (
        f"{search['algorithm']}: {search['trials_ended']} of {search['trials_planned']} ended, "
        f"{search['trials_running']} running; best {search['metric']}="
        f"{best.get('value', '-')} (trial {best.get('experiment_number', '-')})"
    )
    rows = search.get("experiments") or []
    _emit(args, search, lambda: render.table(rows, TRIAL_COLUMNS, title))
    return 0


PARAM_COLUMNS = (
    "parameter",
    "value_type",
    "default.valid_min",
    "default.valid_max",
    "default.valid_options",
    "default.default_value",
    "automl_enabled",
)


def cmd_automl_params(args: argparse.Namespace) -> int:
    which = {"base_experiment_id": args.base_experiment, "network_arch": args.network_arch}
    with _client(args) as jy:
        found = jy.jobs.automl_params(
            *(args.parameters or []), **{k: v for k, v in which.items() if v}
        )
    rows = found["parameter_details"]
    title = f"{found['network_arch']}: ranked by {found['metric']} by default"
    _emit(args, found, lambda: render.table(rows, PARAM_COLUMNS, title))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    with _client(args) as jy:
        for chunk in jy.jobs.get(args.job_id).logs(follow=args.follow, poll=args.poll):
            sys.stdout.write(chunk)
            sys.stdout.flush()
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    with _client(args) as jy:
        events = jy.jobs.get(args.job_id).events()
    columns = ("seq", "type", "epoch", "status", "message")
    _emit(args, events, lambda: render.table(events, columns, f"{len(events)} events"))
    return 0


def cmd_act(args: argparse.Namespace) -> int:
    with _client(args) as jy:
        job = jy.jobs.get(args.job_id)
        if args.action == "delete":
            job.delete()
            print(f"{args.job_id} deleted")
            return 0
        done = getattr(job, args.action)()
    if args.output == "json":
        print(json.dumps(done.doc, indent=2))
    else:
        print(f"{done.id} {done.status}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    target = Path(args.out or f"{args.job_id}.tar.gz")
    with _client(args) as jy:
        job = jy.jobs.get(args.job_id)
        if args.output == "json":
            size = job.download(target)
        else:
            with render.transfer_bar(f"{args.job_id[:8]} → {target}") as update:
                size = job.download(target, on_bytes=update)
    if args.output == "json":
        print(json.dumps({"path": str(target), "bytes": size}))
    else:
        print(f"{target}: {size} bytes")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    body = {
        "display_name": args.name,
        "description": args.description,
        "team": args.team,
        "workspace": args.workspace,
        "checkpoint_choose_method": args.checkpoint,
        "force_create": args.force or None,
    }
    with _client(args) as jy:
        model = jy.jobs.get(args.job_id).publish(**{k: v for k, v in body.items() if v})
    _emit(args, model, lambda: render.table([model], (*LIST_COLUMNS["models"], "sha256")))
    return 0


def cmd_unpublish(args: argparse.Namespace) -> int:
    body = {"team": args.team, "version": args.version}
    with _client(args) as jy:
        removed = jy.jobs.get(args.job_id).remove_published_model(
            **{k: v for k, v in body.items() if v}
        )
    _emit(args, removed, lambda: render.table(removed, LIST_COLUMNS["models"], "removed"))
    return 0


def cmd_services(args: argparse.Namespace) -> int:
    """Inference microservices: start (and wait for Ready), list, status, infer, stop."""
    columns = LIST_COLUMNS["services"]
    with _client(args) as jy:
        if args.verb == "start":
            fields = {"model_path": args.model_path, "idle_timeout_minutes": args.idle_minutes}
            found = jy.services.start(args.parent, **{k: v for k, v in fields.items() if v})
            if args.wait:
                found = jy.services.wait_ready(found["id"], poll=args.poll)
        elif args.verb == "list":
            rows = list(islice(jy.services.list(), args.limit))
            _emit(args, rows, lambda: render.table(rows, columns, f"{len(rows)} services"))
            return 0
        elif args.verb == "status":
            found = jy.services.get(args.service_id)
        elif args.verb == "stop":
            found = jy.services.stop(args.service_id)
        else:
            images = [Path(p).read_bytes() for p in args.images] or None
            answer = jy.services.infer(args.service_id, images=images, media=args.media)
            print(json.dumps(answer, indent=2))
            return 0
    _emit(args, found, lambda: render.table([found], columns))
    return 0


def _collection(kind: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        with _client(args) as jy:
            items = getattr(jy, kind)
            if args.verb == "get":
                doc = items.get(args.item_id)
                _emit(args, doc, lambda: render.table([doc], LIST_COLUMNS[kind]))
                return 0
            if args.verb == "create":
                made = items.create(yaml.safe_load(Path(args.file).read_text()))
                _emit(args, made, lambda: render.table([made], LIST_COLUMNS[kind]))
                return 0
            docs: Iterable[dict[str, Any]] = list(islice(items.list(), args.limit))
            docs = list(docs)
            _emit(args, docs, lambda: render.table(docs, LIST_COLUMNS[kind], f"{len(docs)} {kind}"))
        return 0

    return run


def register(sub: Any) -> None:
    """Add the client commands to the ``jobyard`` parser's subcommands."""
    shared = _common()
    login = sub.add_parser("login", parents=[shared], help="check a key and remember it")
    login.set_defaults(func=_guarded(cmd_login))

    jobs = sub.add_parser("jobs", help="submit, watch and control jobs").add_subparsers(
        dest="jobs_command", required=True
    )
    submit = jobs.add_parser("submit", parents=[shared], help="create a job")
    submit.add_argument("-f", "--file", help="the job request (YAML or JSON)")
    for flag in ("kind", "action", "network-arch", "name", "template-id"):
        submit.add_argument(f"--{flag}")
    submit.add_argument(
        "--set", action="append", metavar="PATH=VALUE", help="e.g. specs.train.num_epochs=5"
    )
    submit.add_argument("--watch", action="store_true", help="then follow it to its end")
    submit.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    submit.set_defaults(func=_guarded(cmd_submit))

    listed = jobs.add_parser("list", parents=[shared], help="list jobs, newest first")
    for flag in ("status", "network-arch", "action", "search"):
        listed.add_argument(f"--{flag}")
    listed.add_argument("--filter", action="append", metavar="EXPR", help="e.g. run>=2 (filterBy)")
    listed.add_argument("--limit", type=int, default=50)
    listed.set_defaults(func=_guarded(cmd_list))

    for name, func, text in (
        ("get", cmd_get, "one job"),
        ("events", cmd_events, "its status events"),
    ):
        one = jobs.add_parser(name, parents=[shared], help=text)
        one.add_argument("job_id")
        one.set_defaults(func=_guarded(func))
    watch = jobs.add_parser("watch", parents=[shared], help="progress bars until the jobs end")
    watch.add_argument("job_ids", nargs="+")
    watch.add_argument("--poll", type=float, default=1.0)
    watch.set_defaults(func=_guarded(cmd_watch))
    logs = jobs.add_parser("logs", parents=[shared], help="its output")
    logs.add_argument("job_id")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--poll", type=float, default=1.0)
    logs.set_defaults(func=_guarded(cmd_logs))
    for action in ("pause", "resume", "cancel", "retry", "delete"):
        act = jobs.add_parser(action, parents=[shared], help=f"{action} a job")
        act.add_argument("job_id")
        act.set_defaults(func=_guarded(cmd_act), action=action)
    trials = jobs.add_parser("trials", parents=[shared], help="an AutoML search's trials")
    trials.add_argument("job_id")
    trials.set_defaults(func=_guarded(cmd_trials))
    params = jobs.add_parser(
        "automl-params", parents=[shared], help="what an AutoML search would tune"
    )
    chosen_entry = params.add_mutually_exclusive_group(required=True)
    chosen_entry.add_argument("--base-experiment", help="a base experiment's id")
    chosen_entry.add_argument("--network-arch", help="or a network of the catalog")
    params.add_argument("parameters", nargs="*", help="only these (dotted spec keys)")
    params.set_defaults(func=_guarded(cmd_automl_params))
    download = jobs.add_parser("download", parents=[shared], help="its results as a tar.gz")
    download.add_argument("job_id")
    download.add_argument("-o", "--out")
    download.set_defaults(func=_guarded(cmd_download))

    publish = jobs.add_parser("publish", parents=[shared], help="publish its model")
    publish.add_argument("job_id")
    for flag in ("name", "description", "team", "workspace"):
        publish.add_argument(f"--{flag}")
    publish.add_argument("--checkpoint", choices=("best_model", "latest_model"))
    publish.add_argument("--force", action="store_true", help="another version of the same")
    publish.set_defaults(func=_guarded(cmd_publish))
    unpublish = jobs.add_parser("unpublish", parents=[shared], help="remove what it published")
    unpublish.add_argument("job_id")
    unpublish.add_argument("--team")
    unpublish.add_argument("--version", type=int)
    unpublish.set_defaults(func=_guarded(cmd_unpublish))

    services = sub.add_parser(
        "services", help="inference microservices: start, list, status, infer, stop"
    ).add_subparsers(dest="verb", required=True)
    start = services.add_parser("start", parents=[shared], help="serve a Done job's model")
    start.add_argument("parent", help="the Done job whose model to serve")
    start.add_argument("--model-path", help="a file of its results (default: best model)")
    start.add_argument("--idle-minutes", type=int, help="stop after this long unused")
    start.add_argument("--wait", action="store_true", help="return once it is Ready")
    start.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    listing = services.add_parser("list", parents=[shared])
    listing.add_argument("--limit", type=int, default=50)
    chosen = [start, listing]
    for verb in ("status", "stop"):
        one = services.add_parser(verb, parents=[shared])
        one.add_argument("service_id")
        chosen.append(one)
    infer = services.add_parser("infer", parents=[shared], help="send it images")
    infer.add_argument("service_id")
    infer.add_argument("images", nargs="*", help="image files, sent base64")
    infer.add_argument("--media", help="or a file of the service's workspace")
    chosen.append(infer)
    for command in chosen:
        command.set_defaults(func=_guarded(cmd_services))

    for kind in ("workspaces", "datasets", "models"):
        verbs = sub.add_parser(
            kind, help=f"{kind}: list, get" + (", create" if kind == "workspaces" else "")
        ).add_subparsers(dest="verb", required=True)
        listing = verbs.add_parser("list", parents=[shared])
        listing.add_argument("--limit", type=int, default=50)
        getting = verbs.add_parser("get", parents=[shared])
        getting.add_argument("item_id")
        chosen = [listing, getting]
        if kind == "workspaces":
            creating = verbs.add_parser("create", parents=[shared])
            creating.add_argument("-f", "--file", required=True)
            chosen.append(creating)
        for command in chosen:
            command.set_defaults(func=_guarded(_collection(kind)))
