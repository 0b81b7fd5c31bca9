"""The bad-input corpus, per subcommand, through the `geocal` command in-process: every case
exits with its documented code (3 config, 4 file, 5 undetermined; never 1 and never 0), one
`error:` line, and leaves the folder byte-identical (no output, no temporary)."""

from __future__ import annotations

import pytest

from tests.badinput.corpus import cases, snapshot, write_corpus
from tests.cli.test_cli import cli

CASES = cases()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    write_corpus(folder)
    return folder


@pytest.mark.parametrize("name, args, codes", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_touches_nothing(name, args, codes, corpus, capsys, monkeypatch):
    monkeypatch.chdir(corpus)
    before = snapshot(corpus)
    code, _, err = cli(args, capsys)
    assert code in codes, (name, code, err[-600:])
    assert err.strip().splitlines()[-1].startswith("error:"), (name, err[-600:])
    assert snapshot(corpus) == before, name
