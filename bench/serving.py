"""Inference through jobyard's API against straight to the model server: 8 clients each
sending one-digit requests, p50 and p99 latency. The baseline is the same server, the
same requests and clients, in the same run; rounds alternate between the two so both
see the same machine."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from bench.client import Api, train_body, wait_done
from bench.plan import Plan
from bench.servers import Bench
from bench.stats import Figure, percentile, wait_until
from jobyard.store.catalog import REFERENCE
from jobyard.workloads import data, images

CLIENTS = 8


def _ready_service(bench: Bench, api: Api) -> tuple[str, str]:
    """A trained digits model and a Ready service of it: (service id, server URL)."""
    specs = REFERENCE.default_spec("train")
    specs["train"]["num_epochs"] = 3
    status, job = api.call(
        "POST", api.org_path("jobs"), train_body(f"bench-serve-{uuid.uuid4().hex[:6]}", specs)
    )
    if status != 201:
        raise RuntimeError(f"train refused: {status} {job}")
    wait_done(api, [job["id"]], timeout=300)
    status, service = api.call(
        "POST", api.org_path("inference_microservices:start"), {"parent_job_id": job["id"]}
    )
    if status != 201:
        raise RuntimeError(f"start refused: {status} {service}")

    def ready() -> bool:
        _, found = api.call("GET", api.org_path(f"inference_microservices/{service['id']}:status"))
        if found["status"] in ("Error", "Stopped"):
            raise RuntimeError(f"service ended {found['status']}: {found['message']}")
        return bool(found["status"] == "Ready")

    wait_until(ready, 120, "the service Ready")
    doc = bench.store.jobs.find(service["id"]) or {}
    return str(service["id"]), str(doc["serving"]["url"])


def _round(call: Any, requests: int) -> list[float]:
    """Seconds per request of ``requests`` calls spread over CLIENTS threads."""
    lock = threading.Lock()
    left = [requests]
    seen: list[float] = []
    errors: list[BaseException] = []

    def client() -> None:
        mine = []
        while True:
            with lock:
                if left[0] <= 0 or errors:
                    break
                left[0] -= 1
            start = time.perf_counter()
            try:
                status, answer = call()
                if status != 200:
                    raise RuntimeError(f"{status}: {answer}")
            except BaseException as e:  # reported after the threads joined
                errors.append(e)
                break
            mine.append(time.perf_counter() - start)
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return seen


def proxy_latency(bench: Bench, api: Api, plan: Plan) -> list[Figure]:
    service_id, url = _ready_service(bench, api)
    pixels, labels = data.load_digits()
    digit = base64.b64encode(images.png_of(pixels[0] * data.PIXEL_MAX)).decode()
    body = {"input": [f"data:image/png;base64,{digit}"]}
    where = urlsplit(url)
    direct = Api(where.hostname or "127.0.0.1", where.port or 80, api.org)
    path = api.org_path(f"inference_microservices/{service_id}:inference")
    through: list[float] = []
    straight: list[float] = []
    per_round = max(CLIENTS, plan.serve_requests // plan.serve_rounds)
    _round(lambda: direct.call("POST", "/v1/infer", body), CLIENTS * 4)  # warm connections
    _round(lambda: api.call("POST", path, body), CLIENTS * 4)
    for _ in range(plan.serve_rounds):
        straight += _round(lambda: direct.call("POST", "/v1/infer", body), per_round)
        through += _round(lambda: api.call("POST", path, body), per_round)
    direct.close()
    api.call("POST", api.org_path(f"inference_microservices/{service_id}:stop"))
    detail = {"clients": CLIENTS, "requests_each_side": len(through), "label": int(labels[0])}
    figures = []
    for q, target in ((50, 2.0), (99, 2.5)):
        value, baseline = percentile(through, q) * 1000, percentile(straight, q) * 1000
        figures.append(
            Figure(
                f"inference p{q} through the API, {CLIENTS} clients",
                "ms",
                value,
                baseline,
                "straight to the model server, same requests and clients, same run",
                f"≤ {target}× baseline",
                value <= target * baseline,
                detail,
            )
        )
    return figures
