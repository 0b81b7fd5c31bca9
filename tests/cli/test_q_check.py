"""`geocal q-check` from the command line: bad inputs and config, each with its exit code."""

from __future__ import annotations

import json

import msgpack
import pytest

from tests.cli.test_cli import cli
from tests.conftest import shared


def _cunir():
    return shared("dials", "cunir_ssx", "indexed.expt"), shared("dials", "cunir_ssx", "indexed.refl")


def _expt(tmp_path, change):
    data = json.loads(_cunir()[0].read_text())
    change(data)
    path = tmp_path / "bad.expt"
    path.write_text(json.dumps(data))
    return path


def _refl(tmp_path, change):
    doc = msgpack.unpackb(_cunir()[1].read_bytes(), strict_map_key=False)
    change(doc[2])
    path = tmp_path / "bad.refl"
    path.write_bytes(msgpack.packb(doc, use_bin_type=True))
    return path


def _no_crystals(data):
    data["crystal"] = []
    for e in data["experiment"]:
        e.pop("crystal")


def _identifiers(data):
    data["experiment"][2]["identifier"] = "not-the-one-the-table-has"


def _two_panels(data):
    det = data["detector"][0]
    det["panels"].append(dict(det["panels"][0], name="second"))
    det["hierarchy"]["children"].append({"panel": 1})


def _drop(column):
    return lambda body: body["data"].pop(column)


def _bad(tmp_path, which):
    expt, refl = _cunir()
    if which == "no crystals":
        return _expt(tmp_path, _no_crystals), refl, "no crystal model"
    if which == "not msgpack":
        path = tmp_path / "bad.refl"
        path.write_text("this is a text file, not a reflection table\n")
        return expt, path, "not a DIALS reflection table"
    if which == "other msgpack":
        path = tmp_path / "bad.refl"
        path.write_bytes(msgpack.packb({"hello": [1, 2, 3]}))
        return expt, path, "not a DIALS reflection table"
    if which == "identifiers":
        return _expt(tmp_path, _identifiers), refl, "do not belong together"
    if which == "multi-panel":
        return _expt(tmp_path, _two_panels), _refl(tmp_path, _drop("panel")), "no 'panel' column"
    if which == "missing miller_index":
        return expt, _refl(tmp_path, _drop("miller_index")), "missing column(s) miller_index"
    if which == "missing xyzobs":
        return expt, _refl(tmp_path, _drop("xyzobs.mm.value")), "missing column(s) xyzobs.mm.value"
    raise AssertionError(which)


@pytest.mark.parametrize("which", ["no crystals", "not msgpack", "other msgpack", "identifiers",
                                   "multi-panel", "missing miller_index", "missing xyzobs"])
def test_bad_dials_input_exits_4_without_output(tmp_path, monkeypatch, capsys, which):
    monkeypatch.chdir(tmp_path)
    expt, refl, words = _bad(tmp_path, which)
    code, _, err = cli(["q-check", "--expt", expt, "--refl", refl, "--plot", "q.png"], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 4, err
    assert last.startswith("error:") and words in last
    assert not list(tmp_path.glob("*.json")) and not (tmp_path / "q.png").exists()


@pytest.mark.parametrize("args, words", [
    (["img.tif", "--poni", "a.poni", "-c", "CeO2", "--expt", "a.expt", "--refl", "a.refl"], "not both"),
    (["img.tif", "--poni", "a.poni"], "missing: calibrant"),
    (["--expt", "a.expt"], "needs both expt and refl"),
    (["--expt", "a.expt", "--refl", "a.refl", "--positions", "both"], "positions"),
])
def test_bad_config_exits_3(tmp_path, monkeypatch, capsys, args, words):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["q-check", *args], capsys)
    assert code == 3 and words in err.strip().splitlines()[-1]


def test_stills_positions_cal_and_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    expt, refl = _cunir()
    code, out, _ = cli(["q-check", "--expt", expt, "--refl", refl, "--positions", "cal", "--plot", "q.png",
                        "--json"], capsys)
    assert code == 0
    rep = json.loads(out)
    # Checking DIALS' own predictions: the residual is the stills prediction's, i.e. nil.
    assert rep["results"]["overall"]["max_abs_dq"] < 1e-9
    assert (tmp_path / "q.png").stat().st_size > 10_000
    assert (tmp_path / "indexed.qcheck.json").exists()


def test_threshold_on_mean_dq_fails_with_6(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    expt, refl = _cunir()
    code, _, err = cli(["q-check", "--expt", expt, "--refl", refl, "--max-mean-dq", "1e-4"], capsys)
    assert code == 6 and "exceeds --max-mean-dq" in err.strip().splitlines()[-1]
    assert json.loads((tmp_path / "indexed.qcheck.json").read_text())["verdict"]["status"] == "flagged"
