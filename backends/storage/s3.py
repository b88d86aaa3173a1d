"""S3 through boto3: AWS, and SeaweedFS (TAO's ``seaweedfs`` cloud type) or any
other S3-compatible endpoint given by ``endpoint_url``.

boto3's managed transfer does multipart uploads (parts of ``PART_SIZE``) and
reports progress; downloads are the response body, read in chunks by the
caller. ``classify`` turns botocore's errors into the storage error tree so
that a workspace check can say which of credentials, bucket or endpoint is
wrong.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from jobyard.backends.storage.base import (
    ObjectInfo,
    Progress,
    Storage,
    bucket_of,
    clean_key,
    clean_prefix,
)
from jobyard.backends.storage.errors import (
    BucketNotFound,
    ObjectNotFound,
    StorageError,
    StorageRefused,
    StorageUnreachable,
)

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

PART_SIZE = 8 * 1024 * 1024
DEFAULT_REGION = "us-east-1"
REFUSED_CODES = frozenset(
    {
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
        "403",
        "Forbidden",
        "PermanentRedirect",
        "301",
    }
)
HINTS = {
    "SignatureDoesNotMatch": "; check secret_key",
    "InvalidAccessKeyId": "; check access_key",
    "AccessDenied": "; these credentials may not use this bucket",
    "PermanentRedirect": "; the bucket is in another region: check region",
    "301": "; the bucket is in another region: check region",
}
MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})
MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def classify(error: Exception, what: str) -> StorageError:
    """The storage error for a botocore error raised while doing ``what``."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", ""))
        message = info.get("Message") or code
        if code in MISSING_BUCKET_CODES:
            return BucketNotFound(f"{what}: no such bucket ({message})")
        if code in REFUSED_CODES:
            hint = HINTS.get(code, "")
            return StorageRefused(
                f"{what}: refused by the storage service: {code} ({message}){hint}"
            )
        if code in MISSING_KEY_CODES:
            return ObjectNotFound(f"{what}: not found")
        return StorageError(f"{what}: {code} ({message})")
    if isinstance(error, EndpointConnectionError):
        return StorageUnreachable(f"{what}: endpoint unreachable ({error})")
    if isinstance(error, BotoCoreError):
        return StorageUnreachable(f"{what}: {type(error).__name__}: {error}")
    return StorageError(f"{what}: {error}")


def client_from_details(
    details: Mapping[str, Any], connect_timeout: float = 5, attempts: int = 3
) -> S3Client:
    """A boto3 S3 client from a workspace's decrypted details."""
    endpoint = details.get("endpoint_url") or None
    config = Config(
        region_name=details.get("region") or DEFAULT_REGION,
        signature_version="s3v4",
        # custom endpoints (SeaweedFS, MinIO) rarely resolve bucket subdomains
        s3={"addressing_style": "path" if endpoint else "auto"},
        connect_timeout=connect_timeout,
        read_timeout=60,
        retries={"max_attempts": attempts, "mode": "standard"},
    )
    client: S3Client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=details.get("access_key"),
        aws_secret_access_key=details.get("secret_key"),
        config=config,
    )
    return client


class S3Storage(Storage):
    name = "s3"

    def __init__(
        self, client: S3Client, bucket: str, prefix: str = "", page_size: int = 1000
    ) -> None:
        self._client = client
        self.bucket = bucket
        self._root = clean_prefix(prefix)
        self._page_size = page_size

    @classmethod
    def from_details(cls, details: Mapping[str, Any], **client_options: Any) -> S3Storage:
        client = client_from_details(details, **client_options)
        return cls(client, bucket_of(details), str(details.get("prefix") or ""))

    def _key(self, key: str) -> str:
        return self._root + clean_key(key)

    def _where(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._root}{key}"

    def check(self) -> None:
        where = f"bucket {self.bucket!r}"
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in {"404", "NoSuchBucket", "NotFound"}:
                raise BucketNotFound(f"{where} does not exist at this endpoint") from e
            raise self._explained(e, f"reading {where}") from e
        except BotoCoreError as e:
            raise classify(e, f"reaching {where}") from e
        probe = self._key(self.probe_key())
        try:
            self._client.put_object(Bucket=self.bucket, Key=probe, Body=b"jobyard probe")
            self._client.delete_object(Bucket=self.bucket, Key=probe)
        except (ClientError, BotoCoreError) as e:
            raise classify(e, f"writing a probe object to {where}") from e

    def _explained(self, error: ClientError, what: str) -> StorageError:
        """HEAD answers carry no error body: ask again with a GET to learn which
        credential was refused (SignatureDoesNotMatch vs InvalidAccessKeyId)."""
        try:
            self._client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        except (ClientError, BotoCoreError) as e:
            return classify(e, what)
        return classify(error, what)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full = self._root + clean_prefix(prefix)
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=full, PaginationConfig={"PageSize": self._page_size}
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        item["Key"][len(self._root) :],
                        int(item.get("Size", 0)),
                        item["LastModified"].timestamp(),
                    )
        except (ClientError, BotoCoreError) as e:
            raise classify(e, f"listing {self._where(prefix)}") from e

    def stat(self, key: str) -> ObjectInfo:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as e:
            raise classify(e, f"reading {self._where(key)}") from e
        return ObjectInfo(
            clean_key(key), int(head["ContentLength"]), head["LastModified"].timestamp()
        )

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[IO[bytes]]:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except (ClientError, BotoCoreError) as e:
            raise classify(e, f"reading {self._where(key)}") from e
        try:
            yield body  # type: ignore[misc]  # StreamingBody reads like a binary file
        finally:
            body.close()

    def upload(
        self, key: str, stream: IO[bytes], size: int | None = None, progress: Progress | None = None
    ) -> None:
        config = TransferConfig(
            multipart_threshold=PART_SIZE,
            multipart_chunksize=PART_SIZE,
            max_concurrency=2,
            use_threads=True,
        )
        full = self._key(key)
        try:
            self._client.upload_fileobj(stream, self.bucket, full, Callback=progress, Config=config)
        except (ClientError, BotoCoreError) as e:
            raise classify(e, f"writing {self._where(key)}") from e
        except StorageError:
            raise
        except Exception as e:  # s3transfer wraps part failures in its own errors
            raise StorageError(f"writing {self._where(key)}: {e}") from e

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as e:
            raise classify(e, f"deleting {self._where(key)}") from e
