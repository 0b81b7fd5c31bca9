"""The bad-input corpus: hostile files of every class geocal's users and faults produce, and
the command lines that feed them to each subcommand with the exit codes they must give.
Used by tests/badinput/test_corpus.py and benchmarks/bad_input.py."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from tests.badinput.seeds import write_seeds

P1M = ["--energy", "20", "-d", "Pilatus1M"]
#: A small LaB6 image (300 × 320, 100 µm pixels, 17 keV) that calibrates: flags are then what
#: stops a run.
RING = ["--energy", "17", "--pixel-size", "100"]


def snapshot(folder: Path) -> dict:
    """Every entry below `folder` (hidden ones too) with its bytes' hash."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink() or not p.is_file():
            out[str(p.relative_to(folder))] = "link" if p.is_symlink() else "dir"
        else:
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def write_corpus(folder: Path) -> dict[str, Path]:
    """Seeds plus the hostile files of the corpus classes, in `folder`; the seeds."""
    from geocal_cli.io.images import write_image
    from geocal_cli.io.poni import write_poni
    from tests.badinput.seeds import NACL_CIF, geometry

    seeds = write_seeds(folder)
    edf = seeds["image_edf"].read_bytes()
    (folder / "empty.edf").write_bytes(b"")
    (folder / "truncated.edf").write_bytes(edf[: len(edf) // 2])
    header = edf[: edf.index(b"}") + 2].decode("latin-1")
    for name, dims in (("huge.edf", ("30000", "30000")), ("line.edf", ("1000000000", "1"))):
        lie = header.replace("Dim_1 = 80", f"Dim_1 = {dims[0]}").replace("Dim_2 = 64", f"Dim_2 = {dims[1]}")
        (folder / name).write_bytes(lie.encode("latin-1"))
    rng = np.random.default_rng(1)
    for suffix in (".edf", ".tif", ".cbf", ".mar3450", ".h5", ".dm3", ".mrc", ".img", ".spe"):
        (folder / f"random{suffix}").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    write_image(folder / "tiny.edf", np.ones((2, 2), np.int32))
    write_image(folder / "strip.edf", np.ones((200_000, 2), np.int32))
    np.save(folder / "stack.npy", np.ones((3, 4), np.int32))
    os.mkfifo(folder / "fifo.edf")
    os.mkfifo(folder / "fifo.yaml")
    os.symlink("loop_b.edf", folder / "loop_a.edf")
    os.symlink("loop_a.edf", folder / "loop_b.edf")
    os.symlink("nowhere.edf", folder / "broken.edf")
    (folder / "folder.edf").mkdir()
    g = geometry()
    for name, change in (("zero_pixel.poni", ("PixelSize1", "0.0")), ("far.poni", ("Distance", "1e300")),
                         ("nan_wl.poni", ("Wavelength", "nan")), ("neg_wl.poni", ("Wavelength", "-1e-10")),
                         ("zero_dist.poni", ("Distance", "0")), ("neg_dist.poni", ("Distance", "-0.1")),
                         ("tilt90.poni", ("Rot1", "1.5707963"))):
        write_poni(folder / name, g)
        text = (folder / name).read_text().splitlines()
        key, value = change
        if key.startswith("PixelSize"):
            text = [ln.replace('"pixel1": 0.0001', '"pixel1": 0.0') for ln in text]
        else:
            text = [f"{key}: {value}" if ln.startswith(key + ":") else ln for ln in text]
        (folder / name).write_text("\n".join(text) + "\n")
    (folder / "latin1.yaml").write_bytes("calibrant: \xe9\n".encode("latin-1"))
    (folder / "nested.yaml").write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    (folder / "digits.yaml").write_text("max_rings: " + "9" * 5000 + "\n")
    (folder / "bomb.yaml").write_text("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a]\n"
                                      "calibrant: *b\n")
    (folder / "notdet.h5").write_bytes(b"not a detector")
    (folder / "readonly").mkdir()
    (folder / "readonly").chmod(0o555)
    (folder / "afile").write_text("x")
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    from geocal_cli.config.simulate import SimulateConfig
    from geocal_cli.pipeline import simulate

    simulate.run(SimulateConfig(output=folder / "ring.edf", calibrant="LaB6", energy_kev=17,
                                detector=None, pixel_size_um=(100, 100), shape=(300, 320),
                                distance_mm=80, seed=3))
    (folder / "million.D").write_text("2.5\n" * 1_000_000)
    (folder / "bigcell.cif").write_text(NACL_CIF.replace("5.6402", "4000"))
    spline = seeds["spline"].read_text().splitlines()
    spline[3] = " 0.0000000E+00 0.0000000E+00 0.3000000E+05 0.3000000E+05"
    (folder / "huge.spline").write_text("\n".join(spline) + "\n")
    return seeds


def cases() -> list[tuple[str, list[str], set[int]]]:
    """(name, geocal arguments, accepted exit codes) of every corpus case, run in the corpus
    folder."""
    img = "img.edf"
    calib = ["calib-ring", "-c", "LaB6", *P1M]
    bad_images = ["missing.edf", "folder.edf", "empty.edf", "truncated.edf", "huge.edf", "line.edf",
                  "fifo.edf", "loop_a.edf", "broken.edf", "tiny.edf", "strip.edf",
                  *[f"random{s}" for s in (".edf", ".tif", ".cbf", ".mar3450", ".h5", ".dm3", ".mrc",
                                           ".img", ".spe")]]
    cases = []
    for name in bad_images:
        cases += [(f"calib-ring {name}", ["calib-ring", name, "-c", "LaB6", *P1M], {4, 5}),
                  (f"recenter {name}", ["recenter", name, "--poni", "g.poni", "-c", "LaB6"], {4, 5}),
                  (f"q-check {name}", ["q-check", name, "--poni", "g.poni", "-c", "LaB6"], {4, 5}),
                  (f"grid-distortion {name}", ["grid-distortion", name, "--pitch", "1"], {4, 5})]
    outputs = {"parent is a file": "afile/out.poni", "a folder": "folder.edf",
               "/proc": "/proc/out.poni", "missing folder": "nofolder/out.poni"}
    if os.geteuid() != 0:  # root writes into read-only folders
        outputs["read-only folder"] = "readonly/out.poni"
    for what, target in outputs.items():
        cases += [(f"calib-ring -o {what}", [*calib[:1], img, *calib[1:], "-o", target], {4}),
                  (f"recenter -o {what}", ["recenter", img, "--poni", "g.poni", "-c", "LaB6", "-o", target], {4}),
                  (f"convert-poni -o {what}", ["convert-poni", "g.poni", "--to", "fit2d", "-o", target], {4}),
                  (f"q-check --report {what}", ["q-check", img, "--poni", "g.poni", "-c", "LaB6", "--report", target], {4}),
                  (f"grid-distortion -o {what}", ["grid-distortion", "d.spline", "-o", target], {4}),
                  (f"simulate {what}", ["simulate", target, "--energy", "20"], {4, 3})]
    cases += [("calib-ring -o input", [*calib[:1], img, *calib[1:], "-o", img], {3}),
              ("convert-poni --report input", ["convert-poni", "g.poni", "--to", "fit2d", "--report", "g.poni"], {3}),
              ("simulate --truth output", ["simulate", "s.edf", "--truth", "s.edf", "--energy", "20"], {3}),
              ("calib-ring foreign deep JSON report", [*calib[:1], img, *calib[1:], "--report", "deep.json"], {3}),
              ("calib-ring foreign PONI", [*calib[:1], img, *calib[1:], "-o", "afile"], {3}),
              ("convert-poni foreign output", ["convert-poni", "g.poni", "--to", "poni", "-o", "cal.D"], {3})]
    for poni in ("zero_pixel", "far", "nan_wl", "neg_wl", "zero_dist", "neg_dist", "tilt90"):
        cases += [(f"recenter {poni}", ["recenter", img, "--poni", f"{poni}.poni", "-c", "LaB6"], {4}),
                  (f"q-check {poni}", ["q-check", img, "--poni", f"{poni}.poni", "-c", "LaB6"], {4}),
                  (f"convert-poni {poni}", ["convert-poni", f"{poni}.poni", "--to", "fit2d"], {4})]
    for cfg in ("latin1", "nested", "digits", "bomb", "fifo"):
        cases += [(f"calib-ring --config {cfg}", ["calib-ring", img, "--config", f"{cfg}.yaml"], {3}),
                  (f"simulate --config {cfg}", ["simulate", "s.edf", "--config", f"{cfg}.yaml"], {3})]
    # On a ring image that calibrates, so that each value is what stops the run.
    values = {"--energy 1e300": ["--energy", "1e300", "--pixel-size", "100"],
              "--energy inf": ["--energy", "inf", "--pixel-size", "100"],
              "--pixel-size 1e-30": ["--energy", "17", "--pixel-size", "1e-30"],
              "-d ''": ["--energy", "17", "-d", ""],
              "-d notdet.h5": ["--energy", "17", "-d", "notdet.h5"],
              "--fix all": [*RING, "--fix", "dist,poni1,poni2,rot1,rot2,rot3,wavelength"],
              "--guess --fix all": [*RING, "--guess", "ring.truth.poni", "--fix",
                                    "dist,poni1,poni2,rot1,rot2,rot3,wavelength"],
              "--max-rings 1": [*RING, "--max-rings", "1"],
              "--min-rings 0": [*RING, "--min-rings", "0"],
              "--fix bogus": [*RING, "--fix", "bogus"]}
    cases += [(f"calib-ring {k}", ["calib-ring", "ring.edf", "-c", "LaB6", *v], {3, 4}) for k, v in values.items()]
    sim = {"--center nan,nan": ["--center", "nan,nan"], "--seed -1": ["--seed", "-1"],
           "--distance 0": ["--distance", "0"], "--distance inf": ["--distance", "inf"],
           "--tilt 90": ["--tilt", "90"], "--width -1": ["--width", "-1"],
           "--spurious 1e8": ["--grid", "1", "--spurious", "100000000"],
           "--shape 200000,200000": ["--pixel-size", "100", "--shape", "200000,200000"],
           "--hot-pixels 1e9": ["--hot-pixels", "1000000000"], "--axis-ratio 9": ["--axis-ratio", "9"],
           "--peak-counts nan": ["--peak-counts", "nan"], "--skew 89": ["--skew", "89"],
           "--energy 0": ["--energy", "0"]}
    cases += [(f"simulate {k}", ["simulate", "s.edf", *(["--energy", "20"] if "--energy" not in v else []), *v], {3})
              for k, v in sim.items()]
    cases += [("grid-distortion --pitch inf", ["grid-distortion", img, "--pitch", "inf"], {3}),
              ("grid-distortion --pitch 1e9", ["grid-distortion", img, "--pitch", "1e9"], {3}),
              ("recenter --max-shift inf", ["recenter", img, "--poni", "g.poni", "-c", "LaB6", "--max-shift", "inf"], {3}),
              ("convert-poni DIALS as .poni", ["convert-poni", "g.expt", "--from", "poni", "--to", "fit2d"], {4}),
              ("convert-poni CIF as geometry", ["convert-poni", "nacl.cif", "--to", "poni"], {4}),
              ("q-check stills bad refl", ["q-check", "--expt", "g.expt", "--refl", "img.edf"], {4}),
              ("calib-ring 10^6 d-spacings", ["calib-ring", img, "-c", "million.D", *P1M], {4}),
              ("calib-ring 4000 Å cell", ["calib-ring", img, "-c", "bigcell.cif", *P1M], {4}),
              ("grid-distortion 30000² spline", ["grid-distortion", "huge.spline"], {4})]
    return cases


