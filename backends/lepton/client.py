"""A small client for the Lepton job REST API, over the standard library.

Why not the ``leptonai`` SDK: it pulls in Ray and pins httpx (hundreds of megabytes), and
jobyard needs ten calls. The SDK is used in the tests instead, as a check that the test
double answers the way the real API does.

Every call has a timeout. Failures become ``jobyard.backends.errors``: a rejected token is
``SubmitRejected`` (permanent; the message never includes the token), a 5xx or a network
failure is ``BackendUnavailable`` (transient, retried), other 4xx are ``SubmitRejected``
with the server's own words.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

from jobyard.backends.errors import BackendUnavailable, SubmitRejected

logger = logging.getLogger(__name__)

PAGE_SIZE = 500
MAX_PAGES = 1000  # a server that never returns an empty page must not loop us forever
MAX_ERROR_TEXT = 300


class LeptonClient:
    def __init__(
        self, api_url: str, token: str, workspace_id: str, timeout_seconds: float = 30.0
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.workspace_id = workspace_id
        self.timeout_seconds = timeout_seconds

    def __repr__(self) -> str:
        return f"LeptonClient({self.api_url!r})"

    # -- jobs ------------------------------------------------------------------------

    def create_job(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """(job, created): an id that exists already returns that job, so submit is
        idempotent across retried dispatches."""
        job_id = str(body["metadata"]["id"])
        status, doc = self._json("POST", "/jobs", body=body, accept=(409,))
        if status != 409:
            return _object(doc), True
        existing = self.get_job(job_id)
        if existing is None:
            raise BackendUnavailable(f"Lepton job {job_id} exists and vanished; retrying")
        return existing, False

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        status, doc = self._json("GET", f"/jobs/{_q(job_id)}", accept=(404,))
        return None if status == 404 else _object(doc)

    def list_jobs(self, query: str | None = None) -> list[dict[str, Any]]:
        """Every alive job (matching the label ``query``, ``k=v[,k=v]``), page by page
        until an empty page, as the SDK does."""
        return list(self.iter_jobs(query))

    def iter_jobs(self, query: str | None = None) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"job_query_mode": "alive_only", "page_size": PAGE_SIZE}
        if query:
            params["query"] = query
        for page in range(1, MAX_PAGES + 1):
            _, doc = self._json("GET", "/jobs", params={**params, "page": page})
            jobs = _object(doc).get("jobs") or []
            if not jobs:
                return
            yield from (_object(job) for job in jobs)
        raise BackendUnavailable(f"Lepton job list did not end after {MAX_PAGES} pages")

    def stop_job(self, job_id: str) -> bool:
        """What ``lep job stop`` sends; False if the job is gone."""
        body = {"spec": {"stopped": True}}
        status, _ = self._json("PATCH", f"/jobs/{_q(job_id)}", body=body, accept=(404,))
        return status != 404

    def delete_job(self, job_id: str) -> bool:
        status, _ = self._json("DELETE", f"/jobs/{_q(job_id)}", accept=(404,))
        return status != 404

    def replicas(self, job_id: str) -> list[dict[str, Any]]:
        status, doc = self._json("GET", f"/jobs/{_q(job_id)}/replicas", accept=(404,))
        return [] if status == 404 or not isinstance(doc, list) else [_object(r) for r in doc]

    def events(self, job_id: str) -> list[dict[str, Any]]:
        status, doc = self._json("GET", f"/jobs/{_q(job_id)}/events", accept=(404,))
        return [] if status == 404 or not isinstance(doc, list) else [_object(e) for e in doc]

    def replica_log(
        self, job_id: str, replica_id: str, max_bytes: int, idle_seconds: float = 2.0
    ) -> bytes | None:
        """The replica's log from its first byte, or None if the replica is gone.

        The real endpoint may keep streaming while the replica runs: reading stops at the
        end of the response, after ``max_bytes``, or once no byte came for
        ``idle_seconds``; what arrived until then is returned.
        """
        path = f"/jobs/{_q(job_id)}/replicas/{_q(replica_id)}/log"
        request = self._request("GET", path)
        try:
            with urllib.request.urlopen(request, timeout=idle_seconds) as response:
                return _read_until_idle(response, max_bytes)
        except urllib.error.HTTPError as e:
            with e:
                if e.code == 404:
                    return None
                raise self._error(e, "GET", path) from e
        except (urllib.error.URLError, OSError) as e:
            raise BackendUnavailable(f"Lepton API unreachable at {self.api_url}: {e}") from e

    # -- node groups -----------------------------------------------------------------

    def node_groups(self) -> list[dict[str, Any]]:
        """The workspace's dedicated node groups."""
        _, doc = self._json("GET", "/dedicated-node-groups")
        return _objects(doc)

    def shapes(self, node_group: str, purpose: str) -> list[dict[str, Any]]:
        """The resource shapes of one node group (by id) that ``purpose`` (``job``,
        ``pod``, ``deployment``) may use."""
        params = {"node_groups": node_group, "purpose": purpose}
        _, doc = self._json("GET", "/shapes", params=params)
        return _objects(doc)

    # -- HTTP ------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> urllib.request.Request:
        url = self.api_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        return urllib.request.Request(url, data=data, headers=headers, method=method)

    def _json(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        accept: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        """(status, decoded body); statuses in ``accept`` come back instead of raising."""
        request = self._request(method, path, params, body)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            with e:  # an HTTPError holds the response open
                if e.code in accept:
                    return e.code, None
                raise self._error(e, method, path) from e
        except (urllib.error.URLError, OSError) as e:
            raise BackendUnavailable(f"Lepton API unreachable at {self.api_url}: {e}") from e
        try:
            return status, json.loads(raw) if raw.strip() else None
        except ValueError as e:
            raise BackendUnavailable(f"Lepton API {method} {path}: reply is not JSON") from e

    def _error(self, e: urllib.error.HTTPError, method: str, path: str) -> Exception:
        if e.code in (401, 403):
            return SubmitRejected(
                f"Lepton rejected the token for workspace {self.workspace_id} (HTTP {e.code}); "
                "update the workspace's lepton_auth_token"
            )
        detail = _error_text(e)
        if e.code >= 500 or e.code == 429:
            return BackendUnavailable(f"Lepton API {method} {path}: HTTP {e.code} {detail}")
        return SubmitRejected(f"Lepton API {method} {path}: HTTP {e.code} {detail}")


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _object(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise BackendUnavailable(f"Lepton API returned {type(doc).__name__}, not an object")
    return doc


def _objects(doc: Any) -> list[dict[str, Any]]:
    if not isinstance(doc, list):
        raise BackendUnavailable(f"Lepton API returned {type(doc).__name__}, not a list")
    return [_object(item) for item in doc]


def _error_text(e: urllib.error.HTTPError) -> str:
    """The server's message, shortened; Lepton answers ``{"code", "message"}``."""
    try:
        raw = e.read(4096)
        doc = json.loads(raw)
        text = str(doc.get("message") or doc) if isinstance(doc, dict) else str(doc)
    except (OSError, ValueError):
        text = e.reason if isinstance(e.reason, str) else ""
    return text[:MAX_ERROR_TEXT]


def _read_until_idle(response: Any, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < max_bytes:
        try:
            chunk = response.read1(min(65536, max_bytes - size))
        except TimeoutError:
            break  # a following stream with nothing new: we have everything so far
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
