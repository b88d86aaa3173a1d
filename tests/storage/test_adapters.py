"""The same behaviour from every storage adapter: S3 (a real SeaweedFS) and files."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest

from jobyard.backends.storage import ObjectNotFound, StorageNotSupported, storage_for
from jobyard.backends.storage.file import FileStorage
from jobyard.backends.storage.s3 import S3Storage
from jobyard.schemas.workspace import WorkspaceConfig

pytestmark = pytest.mark.integration


@pytest.fixture(params=["s3", "file"])
def storage(request: Any, tmp_path: Path) -> Any:
    if request.param == "file":
        return FileStorage(tmp_path / "root")
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("bucket")
    return S3Storage(server.client(), bucket, prefix="team/a", page_size=2)


def test_upload_stat_read_and_delete_roundtrip(storage):
    storage.upload("dir/a.txt", io.BytesIO(b"hello"))
    info = storage.stat("dir/a.txt")
    assert (info.key, info.size) == ("dir/a.txt", 5)
    with storage.open("dir/a.txt") as stream:
        assert stream.read() == b"hello"
    storage.delete("dir/a.txt")
    assert not storage.exists("dir/a.txt")
    with pytest.raises(ObjectNotFound):
        storage.open("dir/a.txt").__enter__()


def test_listing_follows_every_page_and_stays_under_the_prefix(storage):
    for i in range(5):
        storage.upload(f"logs/{i}.txt", io.BytesIO(b"x" * i))
    storage.upload("other/z.txt", io.BytesIO(b"z"))
    listed = list(storage.list("logs"))
    assert [o.key for o in listed] == [f"logs/{i}.txt" for i in range(5)]
    assert [o.size for o in listed] == list(range(5))
    assert len(list(storage.list())) == 6


def test_large_upload_goes_in_parts_and_streams_back_identical(storage, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(1024 * 1024) * 18)  # 18 MiB: three 8 MiB parts on S3
    moved: list[int] = []
    storage.upload_file("big.bin", source, progress=moved.append)
    assert sum(moved) == source.stat().st_size
    digest = hashlib.sha256()
    with storage.open("big.bin") as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()


def test_multipart_upload_is_really_multipart_on_s3(s3_server, bucket, tmp_path):
    storage = S3Storage(s3_server.client(), bucket)
    source = tmp_path / "big.bin"
    source.write_bytes(b"\0" * (17 * 1024 * 1024))
    storage.upload_file("big.bin", source)
    etag = s3_server.client().head_object(Bucket=bucket, Key="big.bin")["ETag"]
    assert etag.strip('"').endswith("-3")  # S3 multipart ETags end in -<parts>


@pytest.mark.parametrize("key", ["../escape", "/../../etc/passwd", "", "a/../../b"])
def test_keys_cannot_leave_the_root(storage, key):
    with pytest.raises(ObjectNotFound):
        storage.upload(key, io.BytesIO(b"x"))


def test_prefix_is_applied_on_s3(s3_server, bucket):
    storage = S3Storage(s3_server.client(), bucket, prefix="/team/a/")
    storage.upload("k.txt", io.BytesIO(b"v"))
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["team/a/k.txt"]


@pytest.mark.parametrize("cloud_type", ["azure", "huggingface", "slurm"])
def test_clouds_without_an_adapter_say_so(cloud_type):
    with pytest.raises(StorageNotSupported, match="not supported yet|cannot store|by URI"):
        storage_for(WorkspaceConfig("w", "acme", cloud_type, 0.0, {}), Path("/nowhere"))


def test_lepton_workspaces_store_through_their_storage_backend(s3_server, bucket):
    details = {"storage_backend": {"storage_type": "seaweedfs", **s3_server.details(bucket)}}
    storage = storage_for(WorkspaceConfig("w", "acme", "lepton", 0.0, details), Path("/nowhere"))
    assert isinstance(storage, S3Storage) and storage.bucket == bucket
    storage.check()
