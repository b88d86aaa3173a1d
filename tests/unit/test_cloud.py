"""Pure validation, splitting and masking of cloud_specific_details."""

from __future__ import annotations

import pytest

from jobyard.schemas.cloud import (
    CLOUD_TYPES,
    MASK,
    mask,
    merge_details,
    normalise,
    patch_details,
    split_details,
    validate_details,
)

SEAWEED = {
    "access_key": "a",
    "secret_key": "s",
    "endpoint_url": "http://x",
    "cloud_bucket_name": "b",
}


@pytest.mark.parametrize("cloud_type", sorted(CLOUD_TYPES))
def test_every_type_reports_each_missing_required_field(cloud_type):
    errors = validate_details(cloud_type, {})
    assert set(errors) == set(CLOUD_TYPES[cloud_type].required)


def test_slurm_hostname_accepts_a_single_name_and_normalises_it_to_a_list():
    details = {"slurm_user": "u", "slurm_hostname": "login1", "base_results_dir": "/r"}
    assert validate_details("slurm", details) == {}
    assert normalise("slurm", details)["slurm_hostname"] == ["login1"]


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"slurm_hostname": []}, "slurm_hostname"),
        ({"slurm_hostname": ["ok", ""]}, "slurm_hostname"),
        ({"ssh_port": 0}, "ssh_port"),
        ({"ssh_port": True}, "ssh_port"),
        ({"slurm_user": " "}, "slurm_user"),
        ({"base_results_dir": "x" * 5000}, "base_results_dir"),
    ],
)
def test_slurm_field_problems_are_reported_by_field(details, field):
    base = {"slurm_user": "u", "slurm_hostname": ["h"], "base_results_dir": "/r"}
    assert field in validate_details("slurm", {**base, **details})


def test_lepton_storage_backend_is_validated_recursively():
    details = {
        "lepton_workspace_id": "w",
        "lepton_auth_token": "t",
        "storage_backend": {"storage_type": "seaweedfs", "access_key": "a"},
    }
    errors = validate_details("lepton", details)
    assert set(errors) == {
        "storage_backend.secret_key",
        "storage_backend.endpoint_url",
        "storage_backend.cloud_bucket_name",
    }
    bad_type = {**details, "storage_backend": {"storage_type": "slurm"}}
    assert "storage_backend.storage_type" in validate_details("lepton", bad_type)
    both = {**details, "storage_backend": {"storage_type": "aws", "cloud_type": "aws"}}
    assert "storage_backend.storage_type" in validate_details("lepton", both)


def test_seed_000s_lepton_example_is_accepted_as_written():
    details = {
        "lepton_workspace_id": "my-lepton-workspace",
        "lepton_auth_token": "lpt_...",
        "storage_backend": {
            "storage_type": "aws",
            "access_key": "AKIA...",
            "secret_key": "...",
            "cloud_bucket_name": "my-bucket",
            "cloud_region": "us-west-2",
        },
    }
    assert validate_details("lepton", details) == {}
    storage = normalise("lepton", details)["storage_backend"]
    assert storage["bucket_name"] == "my-bucket" and storage["region"] == "us-west-2"


def test_an_alias_given_beside_its_canonical_name_is_reported():
    details = {
        "access_key": "a",
        "secret_key": "s",
        "region": "r",
        "bucket_name": "b",
        "cloud_bucket_name": "other",
    }
    assert "cloud_bucket_name" in validate_details("aws", details)


def test_split_mask_and_merge_are_consistent_for_nested_secrets():
    details = {
        "lepton_workspace_id": "w",
        "lepton_auth_token": "t",
        "storage_backend": {"storage_type": "seaweedfs", **SEAWEED},
    }
    public, secret = split_details("lepton", normalise("lepton", details))
    assert secret == {
        "lepton_auth_token": "t",
        "storage_backend": {"access_key": "a", "secret_key": "s"},
    }
    assert (
        "lepton_auth_token" not in public and public["storage_backend"]["cloud_bucket_name"] == "b"
    )
    assert merge_details(public, secret) == details
    shown = mask(public, secret)
    assert shown["lepton_auth_token"] == MASK and shown["storage_backend"]["secret_key"] == MASK
    assert shown["storage_backend"]["endpoint_url"] == "http://x"


def test_patch_ignores_masked_values_and_merges_nested_objects():
    current = {"a": "1", "secret": "s", "nested": {"x": 1, "key": "k"}}
    patched = patch_details(current, {"a": "2", "secret": MASK, "nested": {"x": 2, "key": MASK}})
    assert patched == {"a": "2", "secret": "s", "nested": {"x": 2, "key": "k"}}
