"""The HTTP side of the SDK: logging in with the API key, a fresh login when the token
has expired, and retries with backoff where retrying is safe.

Retries are urllib3's (``Retry``): connection failures and 503 (jobyard's "an outage,
try again", with ``Retry-After`` honoured), never a 4xx, which would only fail again.
POST is retried too: a job created twice is refused as a duplicate by the server.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from jobyard.client import errors

DEFAULT_TIMEOUT = 30.0


def _retry(total: int, backoff: float) -> Retry:
    return Retry(
        total=total,
        connect=total,
        read=0,  # a request that reached the server is not sent again blind
        status=total,
        status_forcelist=(503,),
        allowed_methods=None,  # every method: see the module docstring
        backoff_factor=backoff,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


class Session:
    """One org's authenticated connection to one jobyard."""

    def __init__(
        self,
        base_url: str,
        key: str,
        org: str,
        *,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/api/v2"):
            self.base_url += "/api/v2"
        self.org = org
        self.timeout = timeout
        self._key = key
        self._token: str | None = None
        self.user_id: str | None = None
        self._http = requests.Session()
        adapter = HTTPAdapter(max_retries=_retry(retries, backoff))
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)

    def login(self) -> None:
        body = {"ngc_key": self._key, "ngc_org_name": self.org}
        answer = self._send("POST", f"{self.base_url}/login", json=body).json()
        self._token = answer["token"]
        self.user_id = answer.get("user_id")

    def org_url(self, path: str) -> str:
        return f"{self.base_url}/orgs/{self.org}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        stream: bool = False,
    ) -> requests.Response:
        """A call under the org, logged in first if need be and once more if the token
        has expired meanwhile."""
        if self._token is None:
            self.login()
        for attempt in (1, 2):
            try:
                return self._send(
                    method, self.org_url(path), params=params, json=json, stream=stream
                )
            except errors.Unauthorized:
                if attempt == 2:
                    raise
                self.login()
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            response = self._http.request(
                method, url, headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.ConnectionError as e:
            raise errors.Unavailable(f"cannot reach {url}: {e}", 503) from e
        except requests.Timeout as e:
            raise errors.Unavailable(f"no answer from {url} in {self.timeout} s", 503) from e
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise errors.from_response(response.status_code, body)
        return response

    def pages(self, path: str, key: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a list, page after page (TAO's ``skip``/``size``)."""
        size = int(params.get("size", 100))
        skip = 0
        while True:
            page = self.json("GET", path, params={**params, "skip": skip, "size": size})
            items = page.get(key) or []
            yield from items
            skip += len(items)
            total = (page.get("pagination_info") or {}).get("total_records", 0)
            if not items or skip >= total:
                return

    def close(self) -> None:
        self._http.close()
