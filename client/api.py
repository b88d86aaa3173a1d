"""``Client``: jobyard's REST API from Python, for the people who would rather not write
curl. Every method is one endpoint; lists are iterators that follow the pages; errors are
``jobyard.client.errors`` exceptions carrying the server's ``error_desc``/``error_code``.

    from jobyard.client import Client

    with Client("http://127.0.0.1:8000", key, org="demo") as jy:
        job = jy.jobs.submit({"kind": "experiment", "action": "train",
                              "network_arch": "classification_pyt"})
        job.wait(progress=True)
        job.download("results.tar.gz")
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from jobyard.client.progress import Progress, of_job
from jobyard.client.session import Session
from jobyard.schemas.workload_template import deep_merge

POLL_SECONDS = 1.0


class Job:
    """One job: its last-read document and the calls on it."""

    def __init__(self, session: Session, doc: dict[str, Any]) -> None:
        self._session = session
        self.doc = doc

    @property
    def id(self) -> str:
        return str(self.doc["id"])

    @property
    def status(self) -> str:
        return str(self.doc.get("status", ""))

    def refresh(self) -> Job:
        self.doc = self._session.json("GET", f"jobs/{self.id}")
        return self

    def progress(self) -> Progress:
        return of_job(self.doc)

    def wait(
        self,
        progress: bool = False,
        timeout: float | None = None,
        poll: float = POLL_SECONDS,
        on_update: Callable[[Progress], None] | None = None,
    ) -> Job:
        """Until the job is Done, Error, Canceled or Paused (``TimeoutError`` after
        ``timeout`` seconds); ``progress=True`` draws a bar on the terminal."""
        if progress:
            from jobyard.client.render import live_progress

            with live_progress([self]) as update:

                def both(seen: Progress) -> None:
                    update(self, seen)
                    if on_update:
                        on_update(seen)

                return self._wait(timeout, poll, both)
        return self._wait(timeout, poll, on_update)

    def _wait(
        self, timeout: float | None, poll: float, on_update: Callable[[Progress], Any] | None
    ) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            seen = self.refresh().progress()
            if on_update:
                on_update(seen)
            if seen.finished:
                return self
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} is still {seen.status} after {timeout} s")
            time.sleep(poll)

    def logs(self, follow: bool = False, poll: float = POLL_SECONDS) -> Iterator[str]:
        """The job's output, chunk by chunk; ``follow=True`` keeps reading until it ends."""
        offset = 0
        while True:
            response = self._session.request(
                "GET", f"jobs/{self.id}:logs", params={"offset": offset}
            )
            if response.text:
                yield response.text
            offset = int(response.headers.get("X-Next-Offset", offset))
            if not follow:
                return
            if not response.text:
                if self.refresh().progress().finished:
                    tail = self._session.request(
                        "GET", f"jobs/{self.id}:logs", params={"offset": offset}
                    )
                    if tail.text:
                        yield tail.text
                    return
                time.sleep(poll)

    def events(self, **params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._session.json(
            "GET", f"jobs/{self.id}:events", params={"detailed": "true", **params}
        )["events"]
        return found

    def cancel(self) -> Job:
        return self._act("cancel")

    def pause(self, graceful: bool = True) -> Job:
        return self._act("pause", {"graceful": graceful})

    def resume(self, **fields: Any) -> Job:
        return self._act("resume", fields or None)

    def retry(self) -> Job:
        return Job(self._session, self._session.json("POST", f"jobs/{self.id}:retry"))

    def delete(self) -> None:
        self._session.request("DELETE", f"jobs/{self.id}")

    def publish(self, **body: Any) -> dict[str, Any]:
        """Publish the Done job's model into the org's registry (``display_name``,
        ``description``, ``team``, ``workspace``, ``checkpoint_choose_method``,
        ``force_create``); the model, whose ``id`` is also a base experiment's."""
        found: dict[str, Any] = self._session.json(
            "POST", f"jobs/{self.id}:publish_model", json=body
        )
        return found

    def remove_published_model(self, **body: Any) -> list[dict[str, Any]]:
        """Remove what the job published (a ``team``'s, one ``version``); the removed."""
        found = self._session.json("POST", f"jobs/{self.id}:remove_published_model", json=body)
        removed: list[dict[str, Any]] = found["removed"]
        return removed

    def _act(self, action: str, body: Mapping[str, Any] | None = None) -> Job:
        self.doc = self._session.json("POST", f"jobs/{self.id}:{action}", json=body)
        return self

    def download(
        self,
        to: str | Path | BinaryIO,
        on_bytes: Callable[[int, int | None], None] | None = None,
        chunk: int = 1 << 16,
    ) -> int:
        """The job's results as a tar.gz, streamed to a path or file; the bytes written.
        ``on_bytes(done, total)`` follows the transfer (total None when not announced)."""
        response = self._session.request("GET", f"jobs/{self.id}:download", stream=True)
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        out: BinaryIO = open(to, "wb") if isinstance(to, str | Path) else to  # noqa: SIM115
        try:
            for part in response.iter_content(chunk):
                out.write(part)
                done += len(part)
                if on_bytes:
                    on_bytes(done, total)
        finally:
            if isinstance(to, str | Path):
                out.close()
            response.close()
        return done


class Jobs:
    def __init__(self, session: Session) -> None:
        self._session = session

    def submit(self, body: Mapping[str, Any], over_defaults: bool = False) -> Job:
        """Create a job. ``over_defaults=True``: ``body["specs"]`` is a patch over the base
        experiment's default specs (``jobs:schema``), so ``{"train": {"num_epochs": 3}}``
        is enough."""
        request = dict(body)
        if over_defaults:
            which = {k: request[k] for k in ("network_arch", "kind") if request.get(k)}
            if request.get("base_experiment_ids"):
                which["base_experiment_id"] = request["base_experiment_ids"][0]
            defaults = self.default_specs(str(request.get("action", "train")), **which)
            request["specs"] = deep_merge(defaults, request.get("specs") or {})
        return Job(self._session, self._session.json("POST", "jobs", json=request))

    def default_specs(self, action: str, **which: str) -> dict[str, Any]:
        """An action's default specs: ``network_arch=`` or ``base_experiment_id=``."""
        found: dict[str, Any] = self._session.json(
            "GET", "jobs:schema", params={"action": action, **which}
        )["default"]
        return found

    def automl_params(self, *parameters: str, **which: str) -> dict[str, Any]:
        """What an AutoML search of a base experiment would tune (``base_experiment_id=``
        or ``network_arch=``): ``parameter_details`` rows, the network's ``metrics`` and
        the settings each algorithm takes; only the named ``parameters`` when given."""
        params = {**which, **({"parameters": ",".join(parameters)} if parameters else {})}
        found: dict[str, Any] = self._session.json("GET", "automl:get_param_details", params=params)
        return found

    def get(self, job_id: str) -> Job:
        return Job(self._session, self._session.json("GET", f"jobs/{job_id}"))

    def list(self, **filters: Any) -> Iterator[Job]:
        """Every job matching TAO's filters (``status=``, ``network_arch=`` ...) or the
        list grammar (``filterBy=[...]``, ``search=``), newest first, across pages."""
        for doc in self._session.pages("jobs", "jobs", filters):
            yield Job(self._session, doc)

    def count(self, **filters: Any) -> int:
        return int(self._session.json("GET", "jobs/count", params=filters)["count"])


class Listing:
    """What the API lists and reads (published models): list, get."""

    def __init__(self, session: Session, path: str) -> None:
        self._session = session
        self._path = path

    def list(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return self._session.pages(self._path, self._path, filters)

    def get(self, item_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._session.json("GET", f"{self._path}/{item_id}")
        return found


class Collection(Listing):
    """Workspaces or datasets: list, get, create, delete."""

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        made: dict[str, Any] = self._session.json("POST", self._path, json=dict(body))
        return made

    def delete(self, item_id: str) -> None:
        self._session.request("DELETE", f"{self._path}/{item_id}")


class Services(Listing):
    """Inference microservices: start one for a Done job, wait for it, send it images."""

    def __init__(self, session: Session) -> None:
        super().__init__(session, "inference_microservices")

    def start(self, parent_job_id: str, **fields: Any) -> dict[str, Any]:
        """``model_path``, ``checkpoint_choose_method``, ``idle_timeout_minutes`` ..."""
        body = {"parent_job_id": parent_job_id, **fields}
        found: dict[str, Any] = self._session.json("POST", f"{self._path}:start", json=body)
        return found

    def wait_ready(
        self, service_id: str, timeout: float = 300, poll: float = POLL_SECONDS
    ) -> dict[str, Any]:
        """The service once Ready; ``TimeoutError``, or ``RuntimeError`` if it ended."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.get(service_id)
            if found["status"] == "Ready":
                return found
            if found["status"] in ("Error", "Stopped"):
                raise RuntimeError(f"service {service_id} is {found['status']}: {found['message']}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"service {service_id} not Ready in {timeout} s")
            time.sleep(poll)

    def infer(
        self,
        service_id: str,
        images: list[bytes] | None = None,
        media: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Images (raw bytes, sent base64) or a ``media`` key of the workspace."""
        body: dict[str, Any] = dict(fields)
        if images is not None:
            body["input"] = [base64.b64encode(raw).decode() for raw in images]
        if media is not None:
            body["media"] = media
        found: dict[str, Any] = self._session.json(
            "POST", f"{self._path}/{service_id}:inference", json=body
        )
        return found

    def stop(self, service_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._session.json("POST", f"{self._path}/{service_id}:stop")
        return found


class Client:
    """Logs in with the API key on first use and again when the token expires."""

    def __init__(self, base_url: str, key: str, org: str, **options: Any) -> None:
        self.session = Session(base_url, key, org, **options)
        self.jobs = Jobs(self.session)
        self.workspaces = Collection(self.session, "workspaces")
        self.datasets = Collection(self.session, "datasets")
        self.models = Listing(self.session, "models")
        self.services = Services(self.session)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.session.close()
