"""How the command line shows a refusal, whose message may repeat what was sent (rule I3)."""

import pytest
import typer

from services.cli.session import fail
from services.cli.show import console

PID = "430102198005170012"


def shown(what: str) -> str:
    with console.capture() as captured, pytest.raises(typer.Exit):
        fail(what, "check the id")
    return "".join(captured.get().splitlines())  # as one line, however the terminal wraps it


def test_a_refusal_is_shown_with_person_ids_masked():  # rule I3
    said = shown(f"refused: ACCOUNT_NOT_FOUND — no account for req{PID}abc")
    assert PID not in said
    assert "no account for req4301**********0012abc" in said
    assert "what to do: check the id" in said


def test_a_long_refusal_is_cut_and_its_brackets_are_shown_as_text():
    said = shown("refused: INVALID_ARGUMENT — [bold]" + "x" * 100_000)
    assert "[bold]" in said and "[cut, 100034 chars]" in said
    assert len(said) < 400
