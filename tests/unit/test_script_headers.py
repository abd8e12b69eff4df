"""Every script of the binding service (services/binding/lua) says, in the comment it starts
with, what it is called with and what it answers: its KEYS, its ARGV and what it returns (a
caller reads that, not the body). The shared head (lib.lua: functions only) is exempt."""

from __future__ import annotations

import pathlib

import pytest

LUA = pathlib.Path(__file__).resolve().parents[2] / "services" / "binding" / "lua"
SCRIPTS = sorted(p for p in LUA.glob("*.lua") if p.name != "lib.lua")


def header(path: pathlib.Path) -> str:
    """The comment lines the script starts with, as one text."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return " ".join(lines)


def test_the_binding_service_keeps_its_scripts_in_lua_files():
    names = {p.stem for p in SCRIPTS}
    assert {"create", "end", "confirm", "reorder", "quota_side", "convert"} <= names


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_a_script_starts_with_its_keys_argv_and_returns(path):
    said = header(path)
    missing = [w for w in ("KEYS", "ARGV", "Returns") if w not in said]
    assert not missing, f"{path.name}: its header does not say its {', '.join(missing)}"
