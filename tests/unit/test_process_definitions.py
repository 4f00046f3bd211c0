"""The Procfile (make run) and docker-compose.yml (production-like) start the same commands."""

import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"web": "api", "worker": "worker", "beat": "beat", "flower": "flower"}


def _procfile() -> dict[str, list[str]]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = shlex.split(command)
    return entries


def _program_and_subcommand(argv: list[str]) -> list[str]:
    # Options (ports, auth, schedule paths) differ by environment; the program does not.
    return [arg for arg in argv if not arg.startswith("-")][:3]


def test_compose_runs_the_procfile_commands_plus_postgres_redis_and_a_migration() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    procfile = _procfile()
    assert {"postgres", "redis", "migrate"} <= compose.keys()
    assert compose["migrate"]["command"] == ["alembic", "upgrade", "head"]
    for proc_name, service in SERVICES.items():
        assert _program_and_subcommand(compose[service]["command"]) == _program_and_subcommand(
            procfile[proc_name]
        ), service


def _user(url: str) -> str:
    return url.split("://", 1)[1].split(":", 1)[0]


def test_compose_migrates_as_the_owner_and_runs_every_process_as_the_app_role() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    owner = _user(compose["migrate"]["environment"]["MIGRATION_DATABASE_URL"])
    app_login = compose["db-roles"]["environment"]["APP_DATABASE_USER"]
    assert "db-roles" in compose["migrate"]["depends_on"]
    assert owner == compose["postgres"]["environment"]["POSTGRES_USER"] != app_login
    for service in SERVICES.values():
        environment = compose[service]["environment"]
        assert "MIGRATION_DATABASE_URL" not in environment, service
        assert _user(environment["DATABASE_URL"]) == app_login, service


def test_compose_requires_the_secrets_and_runs_outside_development() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for service in (*SERVICES.values(), "migrate"):
        environment = compose[service]["environment"]
        for name in ("JWT_SECRET", "WALLET_DATA_KEY"):
            assert environment[name].startswith(f"${{{name}:?"), (service, name)
        assert environment["APP_ENV"] != "development", service


def test_compose_restarts_every_long_running_service_and_checks_its_health() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    one_shot = {"db-roles", "migrate"}
    for name, service in compose.items():
        if name in one_shot:
            assert service["restart"] == "on-failure", name
        else:
            assert service["restart"] == "unless-stopped", name
            assert service["healthcheck"]["test"], name
