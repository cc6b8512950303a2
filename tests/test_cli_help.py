"""`desta ... --help`: each default shown once, and no "(default: None)" for options without one."""

from __future__ import annotations

import re

import pytest

from desta.cli import build_parser, main


def _subcommands(parser, prefix=()):
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _subcommands(sub, (*prefix, name))


COMMANDS = sorted(set(_subcommands(build_parser())))


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_each_default_is_shown_once(command, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "(default: None)" not in text and "(default: False)" not in text
    # one option's help: from its flag to the next flag; one "(default" at most in it
    for m in re.finditer(r"(?:^| )(--[a-z][\w-]*)(.*?)(?= --[a-z]|$)", text):
        assert m.group(2).count("(default") <= 1, (command, m.group(1), m.group(2))


def test_ask_help_shows_its_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["ask", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "longest answer, in tokens (default: 256)" in text and "(default: cpu)" in text
    assert "(default: the first one it lists) (default" not in text


def test_synth_languages_help_names_every_language(capsys):
    from desta.data.synth import ENGINES, LANGUAGES

    with pytest.raises(SystemExit):
        main(["data", "synth", "--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, and breaks long words too
    assert f"among{','.join(LANGUAGES)}(defaultall" in text and "it,ru" in text
    assert f"commalistof{','.join(ENGINES)}(defaultall)" in text
