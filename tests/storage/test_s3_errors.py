"""botocore errors become storage errors that say what to fix (pure)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from jobyard.backends.storage import (
    BucketNotFound,
    ObjectNotFound,
    StorageError,
    StorageRefused,
    StorageUnreachable,
)
from jobyard.backends.storage.s3 import classify


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} happened"}}, "PutObject")


@pytest.mark.parametrize(
    ("error", "kind", "fragment"),
    [
        (_client_error("SignatureDoesNotMatch"), StorageRefused, "check secret_key"),
        (_client_error("InvalidAccessKeyId"), StorageRefused, "check access_key"),
        (_client_error("AccessDenied"), StorageRefused, "may not use this bucket"),
        (_client_error("301"), StorageRefused, "check region"),
        (_client_error("NoSuchBucket"), BucketNotFound, "no such bucket"),
        (_client_error("NoSuchKey"), ObjectNotFound, "not found"),
        (_client_error("SlowDown"), StorageError, "SlowDown"),
        (EndpointConnectionError(endpoint_url="http://x:1"), StorageUnreachable, "unreachable"),
    ],
)
def test_each_failure_says_what_to_fix(error, kind, fragment):
    found = classify(error, "writing s3://b/k")
    assert type(found) is kind
    assert str(found).startswith("writing s3://b/k: ") and fragment in str(found)
