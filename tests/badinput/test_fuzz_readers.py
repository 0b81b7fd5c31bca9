"""Every reader, fed mutated files (truncations, byte flips, NaN/inf/huge numbers, deep
nesting, YAML alias bombs and `!!python` tags, random bytes): it returns or raises geocal's
config (3) or input-file (4) error, within 10 s and 1 GiB; never another exception.

Mutations are drawn by hypothesis from valid seeds that geocal's own writers produced; the
examples are derandomised, so CI runs the same cases every time."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from geocal_cli.errors import ExitCode, GeocalError  # noqa: E402
from tests.badinput.seeds import SHAPE, write_seeds  # noqa: E402

SECONDS = 10
#: Mutations per reader: 60 in CI; GEOCAL_FUZZ_EXAMPLES=2000 for a long run.
EXAMPLES = int(os.environ.get("GEOCAL_FUZZ_EXAMPLES", "60"))
EXTRA_BYTES = 1 << 30
YAML_READERS = ("config", "fit2d", "cdiutils")
HOSTILE = [
    b"", b"\x00" * 600, b"\xff\xfe" + "é".encode("utf-16-le") * 50,
    b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b"a: &a ['x','x','x','x','x','x','x','x','x']\n" + b"".join(
        b"a%d: &a%d [%s]\n" % (i, i, b",".join([b"*a" if i == 1 else b"*a%d" % (i - 1)] * 9))
        for i in range(1, 9)) + b"calibrant: *a8\n",
    b"!!python/object/apply:os.system ['echo owned']\n",
    b"energy_kev: " + b"9" * 5000 + b"\n",
]
NUMBERS = [b"nan", b"inf", b"-inf", b"1e308", b"-1e308", b"0", b"-5", b"1e9", b"1e-300", b"9" * 400]


def _readers():
    from geocal_cli.config.base import load_config
    from geocal_cli.config.calib_ring import CalibRingConfig
    from geocal_cli.io.calibrants import load_calibrant
    from geocal_cli.io.dials_models import read_experiments
    from geocal_cli.io.dials_refl import read_reflections
    from geocal_cli.io.distortion import read_distortion
    from geocal_cli.io.formats import Options, read_geometry
    from geocal_cli.io.images import read_image, read_mask
    from geocal_cli.io.poni import read_poni

    readers = {
        "poni": read_poni,
        "image_edf": read_image, "image_tif": read_image, "image_cbf": read_image,
        "mask": lambda p: read_mask(p, SHAPE),
        "dspacing": lambda p: load_calibrant(str(p)),
        "cif": lambda p: load_calibrant(str(p)),
        "spline": read_distortion,
        "config": lambda p: load_config(CalibRingConfig, p, {}),
        "refl": read_reflections,
        "expt_stills": read_experiments,
    }
    for fmt in ("fit2d", "imaged11", "cdiutils", "dials", "gsas2"):
        readers[fmt] = (lambda f: lambda p: read_geometry(p, f, Options(shape=SHAPE)))(fmt)
    return readers


READERS = _readers()
SEED_OF = {name: ("dials" if name == "expt_stills" else name) for name in READERS}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return write_seeds(tmp_path_factory.mktemp("seeds"))


class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _bounded():
    """At most SECONDS of wall time and EXTRA_BYTES of address space more than now."""
    def stop(signum, frame):
        raise _Timeout
    with open("/proc/self/statm") as fh:
        vm = int(fh.read().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = vm + EXTRA_BYTES if hard == resource.RLIM_INFINITY else min(vm + EXTRA_BYTES, hard)
    old = signal.signal(signal.SIGALRM, stop)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.alarm(SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, old)


def assert_clean(reader: str, path: Path) -> None:
    """Run one reader on one file: it returns, or raises exit 3/4; nothing else."""
    try:
        with _bounded():
            READERS[reader](path)
    except GeocalError as exc:
        assert exc.exit_code in (ExitCode.CONFIG, ExitCode.INPUT), (reader, path.read_bytes()[:200], exc)
    except _Timeout:
        pytest.fail(f"{reader} took more than {SECONDS} s on {path.read_bytes()[:200]!r}")


@st.composite
def mutations(draw, seed: bytes):
    kind = draw(st.sampled_from(["truncate", "flip", "number", "splice", "random"]))
    if kind == "truncate":
        return seed[:draw(st.integers(0, max(len(seed) - 1, 0)))]
    if kind == "flip":
        data = bytearray(seed)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        return bytes(data)
    if kind == "number":
        numbers = list(re.finditer(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", seed[:4096]))
        if not numbers:
            return seed
        m = numbers[draw(st.integers(0, len(numbers) - 1))]
        return seed[:m.start()] + draw(st.sampled_from(NUMBERS)) + seed[m.end():]
    if kind == "splice":
        i = draw(st.integers(0, len(seed)))
        return seed[:i] + draw(st.sampled_from(HOSTILE)) + seed[i:]
    return draw(st.binary(max_size=2048))


@pytest.mark.parametrize("reader", sorted(READERS))
def test_hostile_files(reader, seeds, tmp_path):
    suffix = "".join(seeds[SEED_OF[reader]].suffixes)
    for i, content in enumerate(HOSTILE):
        path = tmp_path / f"hostile{i}{suffix}"
        path.write_bytes(content)
        assert_clean(reader, path)


@pytest.mark.parametrize("reader", sorted(READERS))
def test_mutated_files(reader, seeds, tmp_path):
    seed_path = seeds[SEED_OF[reader]]
    seed = seed_path.read_bytes()
    suffix = "".join(seed_path.suffixes)
    READERS[reader](seed_path) if reader != "expt_stills" else None  # the seed itself reads

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data):
        content = data.draw(mutations(seed))
        path = tmp_path / f"m{suffix}"
        path.write_bytes(content)
        assert_clean(reader, path)

    check()


def test_numbers_everywhere(seeds, tmp_path):
    """Every number of every text seed, replaced by each of NaN, ±inf, ±1e308, 0, −5, 1e9 …"""
    for reader in ("poni", "fit2d", "imaged11", "cdiutils", "dials", "gsas2", "dspacing", "config"):
        seed = seeds[SEED_OF[reader]].read_bytes()
        for m in list(re.finditer(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", seed))[:40]:
            for number in NUMBERS:
                path = tmp_path / ("n" + "".join(seeds[reader].suffixes))
                path.write_bytes(seed[:m.start()] + number + seed[m.end():])
                assert_clean(reader, path)
