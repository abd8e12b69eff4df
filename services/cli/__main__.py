"""`gongji`: run, operate, audit and measure the stack. Every command takes the same address
variables as the services (GONGJI_ACCOUNT_ADDR, ...) and calls with an operator's token minted
from the stack's secret (GONGJI_AUTH_SECRET_FILE, default var/auth-secret)."""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Annotated

import typer

from services.cli.accounts import account
from services.cli.bindings import binding
from services.cli.quotas import clearing, quota, reconcile
from services.cli.settlements import premium, premiums, settlement
from services.cli.simulating import simulate
from services.cli.watching import watch
from services.common import logs
from services.stack import launcher

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
app.add_typer(account, name="account")
app.add_typer(binding, name="binding")
app.add_typer(quota, name="quota")
app.add_typer(settlement, name="settlement")
app.command()(premium)
app.add_typer(premiums, name="premiums")
app.command()(watch)
app.command()(clearing)
app.command()(reconcile)
app.command()(simulate)


@app.command()
def demo() -> None:
    """Play the family-mutual-aid story against the running stack (make run), step by step."""
    from services.cli.demo import play
    from services.cli.session import run as session

    session(play)


@app.command()
def run(
    var: Annotated[pathlib.Path, typer.Option(help="data folder of the embedded Redis")] = (
        pathlib.Path("var")
    ),
    services: Annotated[str, typer.Option(help="services to start, by name")] = ",".join(
        launcher.SERVICES
    ),
    certs: Annotated[
        pathlib.Path | None,
        typer.Option(help="a `gongji certs` folder: mutual TLS between every part"),
    ] = None,
) -> None:
    """Start Redis (embedded unless GONGJI_REDIS_URL is set) and the services; Ctrl-C stops.
    The first start makes the token secret (GONGJI_AUTH_SECRET_FILE, default var/auth-secret)."""
    chosen = tuple(s for s in services.split(",") if s)
    unknown = set(chosen) - set(launcher.SERVICES)
    if unknown:
        raise typer.BadParameter(f"unknown services: {', '.join(sorted(unknown))}")
    logs.setup()
    sys.exit(launcher.run(var, chosen, certs))


@app.command()
def health(
    services: Annotated[
        list[str] | None, typer.Argument(help="account, binding, settlement (default: all)")
    ] = None,
) -> None:
    """Ask each service's gRPC health: exit 0 when every one says SERVING (a container's health
    check). Uses the address and TLS variables of the environment."""
    chosen = services or list(launcher.SERVICES)
    unknown = set(chosen) - set(launcher.SERVICES)
    if unknown:
        raise typer.BadParameter(f"unknown services: {', '.join(sorted(unknown))}")
    stack = launcher.Stack(pathlib.Path("var"), tuple(chosen))
    answers = {name: stack.health(name) for name in chosen}
    for name, status in answers.items():
        print(f"{name} {stack.address(name)} {status}")
    sys.exit(0 if set(answers.values()) == {"SERVING"} else 1)


@app.command()
def audit(
    redis_url: Annotated[
        str, typer.Option(envvar="GONGJI_REDIS_URL", help="the Redis of record")
    ] = "",
    recovery_after_ms: Annotated[
        int,
        typer.Option(envvar="GONGJI_RECOVERY_AFTER_MS", help="a request still claimed after "
                     "this long is stuck"),
    ] = 30_000,
    redis_mode: Annotated[
        str, typer.Option(envvar="GONGJI_REDIS_MODE", help="single, or cluster: the URL names "
                          "any node of a Redis Cluster"),
    ] = "single",
) -> None:  # fmt: skip
    """Check every invariant over all the data, reading only: exit 0 when they hold, 1 with a
    report when one does not. Default Redis: the embedded one of `make run`."""
    from services.cli.audit import run as run_audit

    if redis_mode not in ("single", "cluster"):
        raise typer.BadParameter("single or cluster", param_hint="--redis-mode")
    port = os.environ.get("GONGJI_REDIS_PORT") or str(launcher.EMBEDDED_PORT)
    url = redis_url or f"redis://127.0.0.1:{port}/0"
    sys.exit(run_audit(url, recovery_after_ms, redis_mode))


@app.command()
def token(
    role: Annotated[str, typer.Option(help="institution, citizen, operator or service")],
    sub: Annotated[str, typer.Option(help="institution id, person id, staff id or service")],
    ttl: Annotated[
        int, typer.Option(help="seconds until it expires, at most GONGJI_TOKEN_MAX_TTL_S")
    ] = 3600,
) -> None:
    """Print a bearer token signed with the stack's secret (GONGJI_AUTH_SECRET_FILE, default
    var/auth-secret), for local use: `authorization: Bearer <token>`. The services refuse a
    token whose expiry lies more than GONGJI_TOKEN_MAX_TTL_S (default 86400) ahead."""
    from services.common.auth import ROLES
    from services.common.config import ConfigError, token_max_ttl_s
    from services.common.security import load_tokens

    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}")
    try:
        longest = token_max_ttl_s(os.environ)
    except ConfigError as e:
        sys.exit(f"gongji token: {e}")
    if not 0 < ttl <= longest:
        raise typer.BadParameter(f"ttl must be > 0 and at most {longest} (GONGJI_TOKEN_MAX_TTL_S)")
    try:
        secret = os.environ.get("GONGJI_AUTH_SECRET_FILE", "") or "var/auth-secret"
        print(load_tokens(secret, longest).mint(role, sub, ttl))
    except (ConfigError, ValueError) as e:
        sys.exit(f"gongji token: {e}")


@app.command()
def certs(
    out: Annotated[pathlib.Path, typer.Option(help="folder to write into")] = pathlib.Path(
        "var/certs"
    ),
    host: Annotated[
        list[str] | None, typer.Option(help="another name or IP of the services; repeatable")
    ] = None,
) -> None:
    """Make a local CA and certificates for account, binding, settlement and a client (mutual
    TLS; docker-compose uses them), and the token secret next to them if it is missing."""
    from services.cli import certs as certificates
    from services.common.auth import ensure_secret

    certificates.make(out, tuple(host or ()))
    secret = ensure_secret(os.environ.get("GONGJI_AUTH_SECRET_FILE", "") or "var/auth-secret")
    print(f"wrote {out}/ca.pem and a certificate and key per part; token secret: {secret}")


@app.command()
def bench(
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="echo, settle, hot, mix, quota; repeat for several"),
    ] = None,
    callers: Annotated[int, typer.Option(help="concurrent callers")] = 32,
    seconds: Annotated[
        float, typer.Option(help="how long each scenario runs (0: until --count)")
    ] = 10.0,
    count: Annotated[int, typer.Option(help="operations per scenario (0: for --seconds)")] = 0,
    accounts: Annotated[
        int, typer.Option(help="accounts to load through the API before measuring")
    ] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="a JSON document on stdout")] = False,
    cluster: Annotated[
        bool, typer.Option(help="a stack of its own on a Redis Cluster, two replicas of each")
    ] = False,
    replicas: Annotated[
        int,
        typer.Option(
            help="replicas of each service in a stack of its own (0: 2 on a cluster, else 1)"
        ),
    ] = 0,
    memory: Annotated[
        int, typer.Option(help="families (two accounts each) for Redis memory figures")
    ] = 0,
    restart: Annotated[
        bool, typer.Option(help="time a restart of each service process, with what is loaded")
    ] = False,
    load: Annotated[
        str, typer.Option(help="load --accounts through the 'api', or by the account 'scripts'")
    ] = "api",
) -> None:
    """Load the stack (the running one, else one of its own) and report per operation: rps,
    latency, outcomes, server CPU (ms and echo equivalents) and Redis commands; and, when
    asked, Redis memory per account and per settlement, and a restart's time."""
    from services.bench.run import Options
    from services.bench.run import bench as run_bench
    from services.bench.scenarios import SCENARIOS

    scenario = scenario or ["settle", "hot", "mix"]
    unknown = set(scenario) - set(SCENARIOS)
    if unknown:
        raise typer.BadParameter(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if not seconds and not count:
        raise typer.BadParameter("give --seconds or --count")
    logs.setup("WARNING")
    if load not in ("api", "scripts"):
        raise typer.BadParameter("--load is api or scripts")
    if replicas < 0:
        raise typer.BadParameter("--replicas is 0 or more")
    options = Options(accounts, load, cluster, memory, restart, replicas)
    sys.exit(run_bench(scenario, callers, seconds, count, json_out, options))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
