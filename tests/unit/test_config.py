"""Settings from the environment (API.md "Configuration")."""

import pytest

from services.common.config import ConfigError, Settings
from services.common.faults import Fault

REDIS = {"GONGJI_REDIS_URL": "redis://127.0.0.1:6390/0"}


def settings(service: str = "account", **env: str) -> Settings:
    return Settings.from_env(service, {**REDIS, **env})


def test_a_missing_redis_url_stops_the_service_with_a_clear_message():
    with pytest.raises(ConfigError, match="GONGJI_REDIS_URL"):
        Settings.from_env("account", {})


def test_an_empty_redis_url_is_as_good_as_missing():
    with pytest.raises(ConfigError, match="GONGJI_REDIS_URL"):
        Settings.from_env("account", {"GONGJI_REDIS_URL": ""})


def test_the_given_mapping_is_read_not_the_process_environment(monkeypatch):
    monkeypatch.setenv("GONGJI_REDIS_URL", "redis://elsewhere:6379/0")
    with pytest.raises(ConfigError):
        Settings.from_env("account", {})


def test_an_unknown_service_is_a_config_error():
    with pytest.raises(ConfigError, match="ledger"):
        Settings.from_env("ledger", REDIS)


@pytest.mark.parametrize(
    ("service", "port"), [("account", 50051), ("binding", 50052), ("settlement", 50053)]
)
def test_each_service_listens_on_its_own_default_address(service, port):
    s = settings(service)
    assert s.service == service
    assert s.listen_addr == f"127.0.0.1:{port}"


def test_the_defaults_of_the_api():
    s = settings()
    assert (s.account_addr, s.binding_addr, s.settlement_addr) == (
        "127.0.0.1:50051", "127.0.0.1:50052", "127.0.0.1:50053",
    )  # fmt: skip
    assert s.redis_url == REDIS["GONGJI_REDIS_URL"]
    assert s.lock_lease_ms == 5000
    assert s.lock_lease_ms == 5000
    assert s.policy_file == ""
    assert s.fault_plan is None
    assert s.token_max_ttl_s == 86_400


def test_the_longest_token_life_is_a_setting():
    assert settings(GONGJI_TOKEN_MAX_TTL_S="600").token_max_ttl_s == 600
    with pytest.raises(ConfigError, match="GONGJI_TOKEN_MAX_TTL_S"):
        settings(GONGJI_TOKEN_MAX_TTL_S="a day")


def test_the_listen_address_can_be_overridden_without_moving_the_peers():
    s = settings("account", GONGJI_LISTEN_ADDR="0.0.0.0:50051", GONGJI_PLAINTEXT="allow")
    assert s.listen_addr == "0.0.0.0:50051"
    assert s.account_addr == "127.0.0.1:50051"


def test_a_service_listens_on_its_own_addr_variable_when_no_listen_addr_is_set():
    s = settings("binding", GONGJI_BINDING_ADDR="10.0.0.2:6000", GONGJI_ACCOUNT_ADDR="10.0.0.1:7",
                 GONGJI_TLS_CERT_FILE="b.pem", GONGJI_TLS_KEY_FILE="b.key")  # fmt: skip
    assert s.listen_addr == "10.0.0.2:6000"
    assert (s.account_addr, s.binding_addr) == ("10.0.0.1:7", "10.0.0.2:6000")


def test_integers_and_the_policy_file_are_read():
    s = settings(
        GONGJI_RECOVERY_AFTER_MS="3000",
        GONGJI_LOCK_LEASE_MS="1500",
        GONGJI_POLICY_FILE="/etc/p.toml",
    )
    assert (s.recovery_after_ms, s.lock_lease_ms, s.policy_file) == (3000, 1500, "/etc/p.toml")


@pytest.mark.parametrize("name", ["GONGJI_RECOVERY_AFTER_MS", "GONGJI_LOCK_LEASE_MS"])
@pytest.mark.parametrize("raw", ["ten", "5s", "1.5", "0", "-5"])
def test_a_bad_integer_is_a_config_error_naming_the_variable(name, raw):
    with pytest.raises(ConfigError, match=name):
        settings(**{name: raw})


def test_faults_are_honoured_when_the_environment_is_test():
    s = settings(GONGJI_ENV="test", GONGJI_FAULT="kill:Settle:3")
    assert s.fault_plan == Fault("kill", "Settle", 3)


@pytest.mark.parametrize("env", [{}, {"GONGJI_ENV": "prod"}, {"GONGJI_ENV": "staging"}])
def test_faults_are_ignored_outside_the_test_environment(env):
    assert settings(GONGJI_FAULT="kill:Settle:3", **env).fault_plan is None


@pytest.mark.parametrize("bad", ["after_place_holds", "explode:Settle:1", "kill:Settle:0",
                                 "kill::2", "kill:Settle:x"])  # fmt: skip
def test_a_malformed_fault_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="GONGJI_FAULT"):
        settings(GONGJI_ENV="test", GONGJI_FAULT=bad)


def test_plaintext_is_refused_off_loopback_unless_allowed():
    with pytest.raises(ConfigError, match="not a loopback address"):
        settings("account", GONGJI_LISTEN_ADDR="0.0.0.0:50051")
    for address in ("127.0.0.1:1", "localhost:1", "[::1]:1"):
        assert settings("account", GONGJI_LISTEN_ADDR=address).listen_addr == address
    with pytest.raises(ConfigError, match="GONGJI_PLAINTEXT"):
        settings("account", GONGJI_PLAINTEXT="yes")


def test_tls_files_come_as_a_certificate_with_its_key():
    with pytest.raises(ConfigError, match="go together"):
        settings("account", GONGJI_TLS_CERT_FILE="a.pem")
    with pytest.raises(ConfigError, match="needs GONGJI_TLS_CERT_FILE"):
        settings("account", GONGJI_TLS_CA_FILE="ca.pem")
    s = settings("account", GONGJI_TLS_CERT_FILE="a.pem", GONGJI_TLS_KEY_FILE="a.key",
                 GONGJI_TLS_CA_FILE="ca.pem")  # fmt: skip
    assert (s.tls.on, s.tls.ca_file) == (True, "ca.pem")


def test_authentication_is_on_unless_switched_off_by_name():
    assert settings("account").auth is True
    assert settings("account").auth_secret_file == "var/auth-secret"
    assert settings("account", GONGJI_AUTH="off").auth is False
    with pytest.raises(ConfigError, match="GONGJI_AUTH"):
        settings("account", GONGJI_AUTH="false")


@pytest.mark.parametrize(
    "service,port", [("account", 9151), ("binding", 9152), ("settlement", 9153)]
)
def test_each_service_serves_metrics_on_its_own_port_unless_off(service, port):
    assert settings(service).metrics_addr == f"127.0.0.1:{port}"
    assert settings(service, GONGJI_METRICS_ADDR="off").metrics_addr == ""
    assert settings(service, GONGJI_METRICS_ADDR="0.0.0.0:9999").metrics_addr == "0.0.0.0:9999"
    with pytest.raises(ConfigError, match="GONGJI_METRICS_ADDR must be host:port or 'off'"):
        settings(service, GONGJI_METRICS_ADDR="9151")


def test_tracing_is_off_unless_an_exporter_is_named():
    assert settings().traces_exporter == ""
    assert settings(OTEL_TRACES_EXPORTER="none").traces_exporter == ""
    assert settings(OTEL_TRACES_EXPORTER="otlp").traces_exporter == "otlp"
    with pytest.raises(ConfigError, match="OTEL_TRACES_EXPORTER must be otlp, console or none"):
        settings(OTEL_TRACES_EXPORTER="jaeger")


def test_the_redis_mode_is_single_unless_cluster_is_asked_for():
    assert Settings.from_env("account", REDIS).redis_mode == "single"
    cluster = {**REDIS, "GONGJI_REDIS_MODE": "cluster"}
    assert Settings.from_env("account", cluster).redis_mode == "cluster"
    with pytest.raises(ConfigError, match="GONGJI_REDIS_MODE"):
        Settings.from_env("account", {**REDIS, "GONGJI_REDIS_MODE": "sentinel"})
