"""The `gongji` command as counter staff and a new user meet it, against the services running as
their own processes: the demo plays the whole story and exits 0; each command shows what it did;
a refusal prints its reason and what to do, never a traceback; person ids appear only masked;
`gongji watch` follows a person's payments until Ctrl-C."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import signal
import sys

import pytest
from typer.testing import CliRunner

from services.cli.__main__ import app
from services.common.clock import SystemClock, beijing_today
from services.common.ids import mask
from services.common.redisdb import free_port
from services.settlement.cursor import START_HEADER
from tests.integration.bindings import person
from tests.integration.test_settlement import HOSPITAL, bill
from tests.integration.watching import READ_S, watch
from tests.support import new_pid

UNMASKED_ID = re.compile(r"\b[0-9]{17}[0-9X]\b")


@pytest.fixture
def gongji(processes):
    env = {f"GONGJI_{name.upper()}_ADDR": address for name, address in processes.items()}
    runner = CliRunner()

    def call(*args: str, code: int = 0) -> str:
        done = runner.invoke(app, list(args), env={**env, "COLUMNS": "200"})
        assert done.exit_code == code, (args, done.output, done.exception)
        assert "Traceback" not in done.output
        assert not UNMASKED_ID.search(done.output), done.output
        return done.output

    return call


def test_the_demo_plays_the_family_story_and_exits_0(gongji):  # rules S2, S9, S12, S13
    shown = gongji("demo")
    for heading in ("1 · The family", "2 · Binding", "3 · A resident premium",
                    "4 · The son at the pharmacy", "5 · The family's consumption record",
                    "6 · The pharmacy cancels the bill", "done"):  # fmt: skip
        assert heading in shown
    paid = re.search(r"son +│ own account +│ +¥45\.00.*father +│ family aid +│ +¥600\.00.*"
                     r"mother +│ family aid +│ +¥300\.00.*cash +│ at the counter +│ +¥155\.00",
                     shown, re.S)  # fmt: skip
    assert paid, shown
    asked = shown.split("asked from the father's phone")[1]  # rule B14: she confirmed it
    assert re.search(r"father +│ mother +│ spouse .*│ pending consent +│ 0", asked), asked
    assert re.search(r"father +│ mother +│ spouse .*│ active +│ 1", asked), asked
    after_cancel = shown.split("accounts after the cancel")[1]
    assert re.search(r"father .*¥600\.00", after_cancel) and re.search(
        r"son .*¥45\.00", after_cancel
    )
    # rules N1-N3, N6, N7: across provinces, the father's quota pays the grandfather's bill
    across = shown.split("7 · Across provinces")[1]
    assert re.search(r"father +│ grandfather +│ parent +│ +¥500\.00 +│ +¥0\.00 +│ +¥500\.00 +│ "
                     r"active", across), across  # fmt: skip
    assert re.search(r"father +│ quota +│ +¥500\.00.*cash +│ at the counter +│ +¥100\.00",
                     across, re.S), across  # fmt: skip
    assert re.search(r"│ 43 +│ 61 +│ +[0-9]+ +│ +¥[0-9,]+\.[0-9]{2} +│", across), across
    assert "H61040000001 on " in across and "all figures match" in across


def test_counter_commands_open_credit_bind_settle_list_and_cancel(gongji):  # rules S2, S9, B1
    father, son = new_pid("430102", dt.date(1970, 3, 1)), new_pid("430102", dt.date(1999, 5, 1))
    assert mask(father) in gongji("account", "open", father, "--name", "赵四", "--region", "430102")
    gongji("account", "open", son, "--name", "赵小四", "--region", "430102")
    assert "¥300.00" in gongji("account", "credit", father, "300", "--memo", "2026-10")
    bound = gongji("binding", "bind", father, son, "--as", "child")
    binding_id = re.search(r"B[0-9a-f]{20}", bound)[0]
    assert binding_id in gongji("binding", "payers", son)
    settled = gongji("settlement", "settle", "H43010500001", "M-cli-1", son, "--burden", "120.50")
    settlement_id = re.search(r"S[0-9a-f]{24}", settled)[0]
    assert re.search(r"family aid +│ +¥120\.50", settled)
    assert settlement_id in gongji("settlement", "list", "--payer", father)
    assert "¥179.50" in gongji("account", "get", father)
    assert "cancelled" in gongji("settlement", "cancel", settlement_id, "--reason", "wrong bill")
    ledger = gongji("account", "ledger", father)
    assert ledger.index("refund") < ledger.index("settlement") < ledger.index("allocation")
    assert "removed" in gongji("binding", "unbind", binding_id)
    recorded = gongji("account", "contribute", father, "2025-03", "--base", "8000",
                      "--employee", "160", "--employer", "480")  # fmt: skip
    assert "¥160.00" in recorded  # 2% of the base, credited
    gongji("account", "contribute", father, "2025-01", "--base", "8000", "--employee", "160",
           "--employer", "480")  # fmt: skip
    kid = new_pid("430102", dt.date(2012, 5, 1))
    gongji("account", "open", kid, "--name", "赵小五", "--region", "430102", "--resident")
    gongji("binding", "bind", father, kid, "--as", "child")
    assert "auto-pay on" in gongji("premiums", "autopay", kid, father)
    assert f"auto-pay on: {mask(father)} pays for {mask(kid)}" in gongji("premiums", "show", kid)
    year = str(dt.date.today().year + 1)
    ran = " ".join(gongji("premiums", "run", "--year", year).split())
    assert f"{mask(kid)} │ {mask(father)} │ paid ¥400.00" in ran, ran
    record = gongji("account", "contributions", father)
    assert re.search(r"│ +2 +│ +2 +│ +0 +│ 2025-01 +│ 2025-03 +│ 2025-02 +│", record), record


def test_a_citizen_binds_his_wife_she_confirms_it_and_then_it_pays(gongji):  # rule B14
    husband, wife = new_pid("430102", dt.date(1975, 3, 1)), new_pid("430102", dt.date(1977, 3, 1))
    gongji("account", "open", husband, "--name", "孙六", "--region", "430102")
    gongji("account", "open", wife, "--name", "周七", "--region", "430102", "--resident")
    gongji("account", "credit", husband, "300", "--memo", "2026-10")
    bound = " ".join(gongji("binding", "bind", husband, wife, "--as", "spouse",
                            "--citizen", husband).split())  # fmt: skip
    binding_id = re.search(r"B[0-9a-f]{20}", bound)[0]
    assert "pending consent" in bound and f"binding confirm {binding_id}" in bound, bound
    assert "pending consent" in gongji("binding", "list", "--binder", husband,
                                       "--citizen", husband)  # fmt: skip
    unpaid = gongji("settlement", "settle", HOSPITAL, "M-consent-1", wife, "--burden", "50")
    assert "family aid ¥0.00" in unpaid and re.search(r"at the counter +│ +¥50\.00", unpaid)
    refused = " ".join(gongji("binding", "confirm", binding_id, "--citizen", husband,
                              code=1).split())  # fmt: skip
    assert "refused: PERMISSION_DENIED" in refused
    assert "active" in gongji("binding", "confirm", binding_id, "--citizen", wife)
    assert binding_id in gongji("binding", "payers", wife, "--citizen", wife)
    paid = gongji("settlement", "settle", HOSPITAL, "M-consent-2", wife, "--burden", "50")
    assert re.search(r"family aid +│ +¥50\.00", paid), paid
    assert "¥250.00" in gongji("account", "get", husband)


def test_counter_commands_stop_insurance_and_change_its_type(gongji):  # rule A9
    person = new_pid("430102", dt.date(1975, 3, 1))
    gongji("account", "open", person, "--name", "钱五", "--region", "430102")
    changed = gongji("account", "change-type", person, "resident")
    assert "resident" in changed.lower() and mask(person) in changed
    gongji("account", "change-type", person, "employee")
    stopped = " ".join(gongji("account", "stop", person, "--reason", "emigration").split())
    assert "stopped: emigration" in stopped.lower(), stopped
    said = " ".join(gongji("account", "change-type", person, "resident", code=1).split())
    assert "refused: INSURANCE_STOPPED" in said and "what to do:" in said
    said = gongji("account", "stop", person, "--reason", "retired", code=2)
    assert "death, emigration, abandon" in said


def test_a_refusal_prints_its_reason_and_what_to_do(gongji):
    said = gongji("account", "get", new_pid(), code=1)
    assert "refused: ACCOUNT_NOT_FOUND" in said and "what to do: open the account first" in said
    said = gongji("account", "credit", new_pid(), "12.345", code=2)  # not an amount in yuan
    assert "not an amount in yuan" in said


def test_a_stack_that_is_not_running_is_named_as_such(monkeypatch):
    runner = CliRunner()
    nowhere = {f"GONGJI_{n}_ADDR": f"127.0.0.1:{free_port()}"
               for n in ("ACCOUNT", "BINDING", "SETTLEMENT")}  # fmt: skip
    done = runner.invoke(app, ["account", "get", new_pid()], env=nowhere)
    said = " ".join(done.output.split())
    assert done.exit_code == 1
    assert "refused: UNAVAILABLE" in said and "is the stack running (make run)" in said


def test_gongji_health_says_serving_for_each_service_and_fails_for_one_that_is_gone(processes):
    runner = CliRunner()
    env = {f"GONGJI_{name.upper()}_ADDR": address for name, address in processes.items()}
    done = runner.invoke(app, ["health"], env=env)
    assert done.exit_code == 0, done.output
    assert [line.split()[::2] for line in done.output.splitlines()] == [
        ["account", "SERVING"], ["binding", "SERVING"], ["settlement", "SERVING"]]  # fmt: skip
    gone = {**env, "GONGJI_BINDING_ADDR": f"127.0.0.1:{free_port()}"}
    done = runner.invoke(app, ["health", "account", "binding"], env=gone)
    assert done.exit_code == 1 and "binding" in done.output and "UNREACHABLE" in done.output


async def test_gongji_watch_prints_each_payment_with_its_cursor_until_ctrl_c(
    processes, account, settlement
):  # rule A10
    father = await person(account, 1965, 20_000)
    probe = await watch(settlement, father)  # where his ledger stands now
    start = dict(await probe.initial_metadata())[START_HEADER]
    probe.cancel()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200",
           **{f"GONGJI_{n.upper()}_ADDR": a for n, a in processes.items()}}  # fmt: skip
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "watch", father, "--cursor", start,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        paid = [await settlement.Settle(bill(father, fen), timeout=10) for fen in (1_250, 99)]
        lines = [(await asyncio.wait_for(cli.stdout.readline(), READ_S)).decode()
                 for _ in range(3)]  # fmt: skip
        cli.send_signal(signal.SIGINT)
        rest = (await asyncio.wait_for(cli.communicate(), READ_S))[0].decode()
    finally:
        if cli.returncode is None:
            cli.kill()
    assert cli.returncode == 0, rest
    assert lines[0].startswith(f"watching {mask(father)}")
    for line, s, amount, after in zip(lines[1:], paid, ("-¥12.50", "-¥0.99"),
                                      ("¥187.50", "¥186.51"), strict=True):  # fmt: skip
        assert f" settlement  {amount:>11}  balance {after}  {s.settlement_id}" in line, line
        assert f"for {mask(father)}  at {HOSPITAL}" in line
    last = lines[2].split()[0]
    assert f"stopped; resume with --cursor {last}" in rest
    assert "Traceback" not in rest
    assert not UNMASKED_ID.search("".join(lines) + rest)


def test_quota_clearing_and_reconcile_commands(gongji):  # rules N1, N2, N3, N6, N7
    son, father = new_pid("430102", dt.date(1985, 3, 1)), new_pid("610402", dt.date(1955, 3, 1))
    gongji("account", "open", son, "--name", "郑八", "--region", "430102")
    gongji("account", "open", father, "--name", "郑九", "--region", "610402", "--resident")
    gongji("account", "credit", son, "500", "--memo", "2026-10")
    granted = " ".join(gongji("quota", "grant", son, father, "--as", "parent", "--amount", "300")
                       .split())  # fmt: skip
    quota_id = re.search(r"Q[0-9]{4}[0-9a-f]{16}", granted)[0]
    assert "¥300.00 │ ¥0.00 │ ¥300.00 │ active" in granted, granted
    assert "¥200.00" in gongji("account", "get", son)  # available: 300 set aside
    paid = gongji("settlement", "settle", "H61040000001", "X-cli-1", father, "--burden", "120")
    assert re.search(r"quota +│ +¥120\.00", paid), paid
    assert "¥180.00" in gongji("quota", "list", "--relative", father)
    assert "refused: QUOTA_BELOW_USED" in gongji("quota", "change", quota_id, "--amount", "100",
                                                 code=1)  # fmt: skip
    assert "¥250.00" in gongji("quota", "change", quota_id, "--amount", "250")
    ended = " ".join(gongji("quota", "end", quota_id, "--citizen", father).split())
    assert "ended: by relative" in ended, ended
    day_now = beijing_today(SystemClock())
    month, today = f"{day_now:%Y-%m}", day_now.isoformat()
    statement = gongji("clearing", month)
    assert f"clearing statement {month}" in statement and re.search(r"│ 43 +│ 61 +│", statement)
    assert "refused: INVALID_DATE" in gongji("clearing", "2999-01", code=1)
    day = gongji("reconcile", "H61040000001", today)
    assert "settlements" in day and "own accounts" in day and "not over" in day
    compared = gongji("reconcile", "H61040000001", today, "--theirs", "settlements=1,cash=0")
    assert "the figures do not match" in compared and "differs" in compared
