"""The workload catalog through the API and the CLI: listing with filters and paging, an
org admin's entries (and only theirs), every kind of bad entry refused naming its field,
non-admin writes forbidden, entries in use kept, and import/export round trips."""

from __future__ import annotations

import copy

import pytest
import yaml

from jobyard import cli
from jobyard.store.catalog import REFERENCE
from tests.helpers import assert_error

pytestmark = pytest.mark.integration


def entry(**overrides):
    """A small entry of one's own: a script trained on the process backend."""
    data = {
        "network_arch": "my_net",
        "name": "tiny",
        "description": "a user's own training script",
        "command": ["{python}", "/opt/train.py", "--spec", "{spec_file}", "--out", "{results_dir}"],
        "metric": "val_accuracy",
        "actions": {
            "train": {
                "default_spec": {"train": {"num_epochs": 3, "lr": 0.1}},
                "json_schema": {
                    "type": "object",
                    "properties": {
                        "train": {
                            "type": "object",
                            "properties": {
                                "num_epochs": {"type": "integer", "minimum": 1},
                                "lr": {"type": "number"},
                            },
                            "additionalProperties": False,
                        }
                    },
                },
            },
            "evaluate": {"parents": ["train"], "spec_fields": {"model": "{parent_checkpoint}"}},
        },
        "hyperparameters": [
            {"name": "train.lr", "type": "float", "min": 1e-4, "max": 1.0, "log": True}
        ],
    }
    data.update(overrides)
    return data


def errors_of(response):
    return assert_error(response, 400)["errors"]["entry"]


def test_list_base_experiments_pages_and_filters_the_catalog(login):
    s = login()
    listed = s.call("GET", "jobs:list_base_experiments").json
    ids = [b["id"] for b in listed["base_experiments"]]
    assert REFERENCE.id in ids
    assert listed["pagination_info"]["total_records"] == len(ids)
    reference = next(b for b in listed["base_experiments"] if b["id"] == REFERENCE.id)
    assert reference["read_only"] and reference["scope"] == "global"
    assert reference["actions"][:1] == ["train"]
    one = s.call("GET", "jobs:list_base_experiments?size=1&sort=name-ascending").json
    assert len(one["base_experiments"]) == 1 and one["pagination_info"]["page_size"] == 1
    arch = s.call("GET", "jobs:list_base_experiments?network_arch=rtdetr").json
    assert arch["base_experiments"] == [] and arch["pagination_info"]["total_records"] == 0
    named = s.call("GET", "jobs:list_base_experiments?name=digits_mlp").json["base_experiments"]
    assert [b["id"] for b in named] == [REFERENCE.id]
    assert s.call("GET", "jobs:list_base_experiments?type=medical").json["base_experiments"] == []


def test_an_admin_adds_an_entry_the_org_lists_and_runs_and_no_other_org_sees(login):
    admin = login(admin=True)
    created = admin.call("POST", "base_experiments", json=entry())
    assert created.status_code == 201, created.json
    body = created.json
    assert body["scope"] == "acme" and not body["read_only"] and body["version"] == 1
    entry_id = body["id"]
    user = login(user="bob")
    listed = user.call("GET", "jobs:list_base_experiments?network_arch=my_net").json
    assert [b["id"] for b in listed["base_experiments"]] == [entry_id]
    schema = user.call("GET", f"jobs:schema?action=train&base_experiment_id={entry_id}").json
    assert schema["default"] == {"train": {"num_epochs": 3, "lr": 0.1}}
    whole = user.call("GET", f"base_experiments/{entry_id}").json
    assert whole["actions"]["evaluate"]["parents"] == ["train"]
    # a job names the network; its specs are checked against the entry's schema
    job = {"kind": "experiment", "action": "train", "network_arch": "my_net"}
    made = user.call("POST", "jobs", json=job)
    assert made.status_code == 201, made.json
    assert made.json["base_experiment_ids"] == [entry_id]
    bad = user.call("POST", "jobs", json={**job, "specs": {"train": {"epochs": 3}}})
    assert "train.epochs: unknown property" in assert_error(bad, 400)["error_desc"]
    # an evaluate job needs a Done train parent, by the entry's parent rule
    orphan = user.call("POST", "jobs", json={**job, "action": "evaluate"})
    assert "give parent_job_id (a train job)" in assert_error(orphan, 400)["error_desc"]
    # another org sees nothing of it
    other = login(org="globex")
    assert_error(other.call("GET", f"base_experiments/{entry_id}"), 404)
    listed = other.call("GET", "jobs:list_base_experiments?network_arch=my_net").json
    assert listed["base_experiments"] == []
    refused = other.call("POST", "jobs", json=job)
    assert (
        "no base experiment runs network_arch 'my_net'"
        in (assert_error(refused, 400)["error_desc"])
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda e: e["command"].append("{weights}"),
            "command[6]: unknown placeholder {weights}",
        ),
        (
            lambda e: e["actions"]["train"].update(command=["run", "{spec_file!r}"]),
            "actions.train.command[1]: '{spec_file!r}': {spec_file!r} is not a plain placeholder",
        ),
        (
            lambda e: e["actions"]["evaluate"]["spec_fields"].update(x="{nope}"),
            "actions.evaluate.spec_fields.x: unknown placeholder {nope}",
        ),
        (
            lambda e: e["actions"]["train"].update(json_schema={"type": "objekt"}),
            "actions.train.json_schema: not a valid JSON Schema at type:",
        ),
        (
            lambda e: e["actions"]["train"]["default_spec"]["train"].update(num_epochs=0),
            "actions.train.default_spec: train.num_epochs: 0 is less than the minimum of 1",
        ),
        (
            lambda e: e["actions"]["evaluate"].update(parents=["prune"]),
            "actions.evaluate.parents: unknown action prune (this entry has: evaluate, train)",
        ),
        (
            lambda e: e["actions"].update(fly={}),
            "actions.fly: unknown action (jobs can ask for:",
        ),
        (lambda e: e.update(network_arch="My Net"), "network_arch: String does not match"),
        (lambda e: e.update(status_protocol="xml"), "status_protocol: Must be one of"),
        (
            lambda e: e["hyperparameters"][0].update(min=0.0),
            "hyperparameters[0].min: a log-scale range must be above 0",
        ),
        (lambda e: e.update(colour="red"), "colour: Unknown field."),
    ],
)
def test_a_bad_entry_is_refused_naming_its_field(login, change, expected):
    admin = login(admin=True)
    data = copy.deepcopy(entry())
    change(data)
    problems = errors_of(admin.call("POST", "base_experiments", json=data))
    assert any(p.startswith(expected) for p in problems), problems
    assert (
        admin.call("GET", "jobs:list_base_experiments?network_arch=my_net").json["base_experiments"]
        == []
        or data["network_arch"] != "my_net"
    )


def test_a_second_entry_of_the_same_network_and_name_is_a_conflict(login):
    admin = login(admin=True)
    first = admin.call("POST", "base_experiments", json=entry()).json["id"]
    again = assert_error(admin.call("POST", "base_experiments", json=entry()), 409)
    assert "my_net/tiny already exists in scope acme" in again["error_desc"]
    assert first in again["error_desc"]


def test_non_admins_read_but_cannot_write(login):
    admin = login(admin=True)
    entry_id = admin.call("POST", "base_experiments", json=entry()).json["id"]
    user = login(user="bob")
    assert user.call("GET", f"base_experiments/{entry_id}").status_code == 200
    for method, path in (
        ("POST", "base_experiments"),
        ("PUT", f"base_experiments/{entry_id}"),
        ("DELETE", f"base_experiments/{entry_id}"),
    ):
        response = user.call(method, path, json=entry(name="other"))
        assert "needs an admin key" in assert_error(response, 403)["error_desc"]
    assert user.call("GET", f"base_experiments/{entry_id}").json["name"] == "tiny"


def test_put_replaces_an_entry_under_its_id_and_global_ones_are_read_only(login):
    admin = login(admin=True)
    entry_id = admin.call("POST", "base_experiments", json=entry()).json["id"]
    changed = entry(description="now documented", ngc_path="me/my_net:v2")
    replaced = admin.call("PUT", f"base_experiments/{entry_id}", json=changed)
    assert replaced.status_code == 200, replaced.json
    assert replaced.json["id"] == entry_id and replaced.json["version"] == 2
    assert admin.call("GET", f"base_experiments/{entry_id}").json["description"] == (
        "now documented"
    )
    for method in ("PUT", "DELETE"):
        refused = admin.call(method, f"base_experiments/{REFERENCE.id}", json=entry())
        assert "global entry: read-only" in assert_error(refused, 409)["error_desc"]


def test_an_entry_a_job_still_uses_cannot_be_removed(login):
    admin = login(admin=True)
    entry_id = admin.call("POST", "base_experiments", json=entry()).json["id"]
    job = {"kind": "experiment", "action": "train", "network_arch": "my_net"}
    job_id = admin.call("POST", "jobs", json=job).json["id"]
    refused = assert_error(admin.call("DELETE", f"base_experiments/{entry_id}"), 409)
    assert job_id in refused["error_desc"] and "have not finished" in refused["error_desc"]
    assert admin.call("POST", f"jobs/{job_id}:cancel").status_code == 200
    # Canceling -> Canceled happens in the tick; a job never submitted is final at once here
    admin.client.application.extensions["jobyard"].store.jobs._coll.update_one(
        {"_id": job_id}, {"$set": {"status": "Canceled", "active": False}}
    )
    assert admin.call("DELETE", f"base_experiments/{entry_id}").status_code == 200
    assert_error(admin.call("GET", f"base_experiments/{entry_id}"), 404)


def _cli(monkeypatch, settings, *args):
    for key, value in {
        "JOBYARD_DATA_DIR": str(settings.data_dir),
        "JOBYARD_MONGO_URI": str(settings.mongo_uri),
        "JOBYARD_MONGO_DB": settings.mongo_db,
        "JOBYARD_ENCRYPTION_KEY": str(settings.encryption_key),
        "JOBYARD_JWT_SECRET": str(settings.jwt_secret),
    }.items():
        monkeypatch.setenv(key, value)
    return cli.main(["admin", "workloads", *args])


def test_import_adds_then_updates_and_export_round_trips(
    login, settings, monkeypatch, tmp_path, capsys
):
    path = tmp_path / "entries.yaml"
    path.write_text(yaml.safe_dump({"base_experiments": [entry(), entry(name="tiny2")]}))
    assert _cli(monkeypatch, settings, "import", str(path)) == 0
    assert capsys.readouterr().out.count("added: my_net/") == 2
    assert _cli(monkeypatch, settings, "import", str(path)) == 0
    assert "updated (version 2): my_net/tiny " in capsys.readouterr().out
    s = login()  # global entries: every org lists them
    listed = s.call("GET", "jobs:list_base_experiments?network_arch=my_net").json
    assert sorted(b["name"] for b in listed["base_experiments"]) == ["tiny", "tiny2"]
    assert all(b["read_only"] for b in listed["base_experiments"])
    out = tmp_path / "exported.yaml"
    assert _cli(monkeypatch, settings, "export", "-o", str(out)) == 0
    exported = yaml.safe_load(out.read_text())["base_experiments"]
    assert [e["name"] for e in exported] == ["tiny", "tiny2"]
    assert exported[0]["command"] == entry()["command"]


def test_import_of_a_file_with_one_bad_entry_imports_nothing(
    login, settings, monkeypatch, tmp_path, capsys
):
    bad = entry(name="broken", command=["{python}", "{nowhere}"])
    path = tmp_path / "entries.yaml"
    path.write_text(yaml.safe_dump([entry(), bad]))
    assert _cli(monkeypatch, settings, "import", str(path)) == 1
    err = capsys.readouterr().err
    assert "nothing imported" in err
    assert "base_experiments[1] (broken).command[1]: unknown placeholder {nowhere}" in err
    s = login()
    assert (
        s.call("GET", "jobs:list_base_experiments?network_arch=my_net").json["base_experiments"]
        == []
    )
