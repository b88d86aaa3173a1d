"""Settings: read once, typed, and a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobyard.schemas.settings import Settings, SettingsError, documentation


def test_defaults_need_no_environment():
    s = Settings.from_env({})
    assert s.mongo_uri is None and s.redis_url is None and s.embedded
    assert s.port == 8000 and s.default_timeout_minutes == 60


def test_values_are_parsed_to_their_types():
    s = Settings.from_env(
        {
            "JOBYARD_PORT": "9001",
            "JOBYARD_DATA_DIR": "/srv/jy",
            "JOBYARD_MONGO_URI": "mongodb://db:27017/",
            "JOBYARD_REDIS_URL": "redis://r:6379/0",
            "JOBYARD_GRACE_PERIOD_SECONDS": "2.5",
            "JOBYARD_LOCAL_BACKEND": "kubernetes",
        }
    )
    assert s.port == 9001 and s.data_dir == Path("/srv/jy") and s.grace_period_seconds == 2.5
    assert s.local_backend == "kubernetes" and not s.embedded


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("JOBYARD_PORT", "eighty", "invalid literal"),
        ("JOBYARD_PORT", "70000", "at most 65535"),
        ("JOBYARD_TOKEN_TTL_SECONDS", "5", "at least 60"),
        ("JOBYARD_MONGO_URI", "postgres://x", "mongodb://"),
        ("JOBYARD_REDIS_URL", "localhost:6379", "redis://"),
        ("JOBYARD_LOG_LEVEL", "LOUD", "must be one of"),
        ("JOBYARD_LOCAL_BACKEND", "docker", "must be one of"),
        ("JOBYARD_GRACE_PERIOD_SECONDS", "-1", "at least 0"),
        ("JOBYARD_PROT", "8000", "unknown setting"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(variable, value, fragment):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
    assert str(caught.value).startswith(variable)
    assert fragment in str(caught.value)


def test_settings_are_frozen():
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


def test_readme_documents_every_setting():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [variable for variable, _, _ in documentation() if f"`{variable}`" not in readme]
    assert not missing, f"README.md lacks {missing}; paste `jobyard config` output"
