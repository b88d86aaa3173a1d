"""compose.yaml parses and runs every service README.md talks about."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]


def test_compose_names_every_service_the_readme_mentions():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"mongo", "redis", "api", "worker", "beat"} <= set(services)
    readme = (ROOT / "README.md").read_text()
    mentioned = set(re.findall(r"docker compose (?:up|exec|logs) [^`\n]*?--scale (\w+)=", readme))
    mentioned |= set(re.findall(r"docker compose exec (\w+)", readme))
    assert mentioned and mentioned <= set(services)


def test_every_jobyard_service_runs_a_real_subcommand():
    from jobyard.cli import parser

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        command = service.get("command", [])
        if command[:1] == ["jobyard"]:
            parser().parse_args(command[1:])  # exits on an unknown subcommand
            assert service["environment"]["JOBYARD_MONGO_URI"].startswith("mongodb://"), name
