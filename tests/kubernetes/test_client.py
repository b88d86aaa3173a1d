"""Client errors become the backends' errors, with a message a person can act on."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from jobyard.backends.errors import BackendUnavailable, SubmitRejected
from jobyard.backends.kubernetes.client import api_error


def refusal(status, message, reason="x"):
    body = json.dumps({"kind": "Status", "code": status, "message": message})
    return ApiException(status=status, reason=reason, body=body)


def test_bad_credentials_say_so_and_are_not_retried():
    error = api_error(refusal(401, "Unauthorized", "Unauthorized"), "create Job jy-a-r1")
    assert isinstance(error, SubmitRejected)
    assert str(error).startswith("create Job jy-a-r1: the Kubernetes API server rejected")
    assert "JOBYARD_KUBERNETES_KUBECONFIG" in str(error)


def test_missing_rbac_rights_quote_the_server():
    message = (
        'jobs.batch is forbidden: User "system:serviceaccount:ml:jobyard" cannot '
        'create resource "jobs" in API group "batch" in the namespace "ml"'
    )
    error = api_error(refusal(403, message), "create Job jy-a-r1")
    assert isinstance(error, SubmitRejected)
    assert "lacks RBAC rights" in str(error) and 'cannot create resource "jobs"' in str(error)


def test_an_invalid_manifest_is_permanent():
    message = 'Job.batch "jy-a-r1" is invalid: spec.template.spec.containers[0].image: Required'
    error = api_error(refusal(422, message), "create Job jy-a-r1")
    assert isinstance(error, SubmitRejected) and "(422)" in str(error)


@pytest.mark.parametrize("status", [429, 500, 503, 504])
def test_server_trouble_is_transient(status):
    assert isinstance(
        api_error(refusal(status, "etcdserver: request timed out"), "poll"), BackendUnavailable
    )


def test_a_body_that_is_not_a_status_still_gives_a_message():
    error = api_error(ApiException(status=502, reason="Bad Gateway", body="<html>"), "poll")
    assert "Bad Gateway" in str(error)
