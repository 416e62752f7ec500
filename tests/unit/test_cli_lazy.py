"""The ``jobpipe`` frame lists every stage's commands without importing the stages,
and lists them exactly as click would after importing them."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from jobpipe.cli import COMMANDS, cli
from jobpipe.cli.bench import BENCHES, bench
from jobpipe.cli.lazy import LazyGroup, docstring


def test_every_command_summary_is_read_from_source() -> None:
    for target in [*COMMANDS.values(), *BENCHES.values()]:
        assert docstring(target), target  # else listing would import its stage


@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize("group", [cli, bench], ids=["jobpipe", "bench"])
def test_the_listing_is_the_one_click_makes_from_the_imported_commands(
        group: LazyGroup, width: int) -> None:
    ctx = click.Context(group, info_name=group.name)
    ours = click.HelpFormatter(width=width)
    group.format_commands(ctx, ours)
    clicks = click.HelpFormatter(width=width)
    click.Group.format_commands(group, ctx, clicks)
    assert ours.getvalue() == clicks.getvalue()
    assert ours.getvalue().count("\n") > len(group.lazy)  # a real listing, not two blanks


def test_help_imports_no_stage() -> None:
    code = ("import sys\nfrom jobpipe.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'bridge', 'consumers', 'ingest', 'loadtest'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
