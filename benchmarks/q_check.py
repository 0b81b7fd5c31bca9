"""Benchmark: q-check of 10⁶ synthetic still reflections, vectorised vs a per-reflection loop.

Synthetic stills (λ = 1 Å, a 2000 × 2000 panel of 0.1 mm at 200 mm, random crystal
orientations of a 40 Å cubic cell, random Miller indices within the limiting sphere) give
10⁶ reflections whose observed positions are the predicted ones plus 0.3 px of noise, and the
detector is then moved 0.5 mm further away. In one process:

- geocal: `core.q.stills.check_experiments` on all reflections: q_bragg, stills prediction,
  ray intersection, q_pixel, the table comparisons, the slip search (on 20 000 reflections)
  and the diagnosis (Jacobian over all reflections);
- loop: the usual one-off script, one reflection at a time in Python with numpy 3-vectors
  (q = A h, rotation onto the Ewald sphere, s1, q_pixel, |Δq|), timed on 20 000 reflections
  and scaled to 10⁶; it makes no diagnosis.

It prints the wall time of each, their ratio and the diagnosis.

    python benchmarks/q_check.py [--reflections N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import geocal_cli.main  # noqa: E402, F401

import numpy as np  # noqa: E402

from geocal_cli.core.q.stills import Reflections, check_experiments  # noqa: E402
from geocal_cli.core.q.prediction import (Crystals, Panels, q_bragg, ray_intersection,  # noqa: E402
                                    rotation_about, stills_predict)

LOOP_SAMPLE = 20_000


def synthetic(n: int, per_still: int = 500, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_exp = n // per_still + 1
    axes = rng.normal(size=(n_exp, 3))
    A = rotation_about(axes / np.linalg.norm(axes, axis=1, keepdims=True), rng.uniform(0, np.pi, n_exp)) / 40.0
    eye = np.tile(np.eye(3), (n_exp, 1, 1))
    crystals = Crystals(A=A, fixed=eye, setting=eye, axis=np.tile([1.0, 0, 0], (n_exp, 1)),
                        s0=np.tile([0.0, 0, -1.0], (n_exp, 1)))
    panels = Panels(origin=np.array([[-95.0, 105.0, -200.0]]), fast=np.array([[1.0, 0, 0]]),
                    slow=np.array([[0.0, -1, 0]]), pixel_size=np.array([[0.1, 0.1]]),
                    image_size=np.array([[2000, 2000]]))
    hs, es, xys = [], [], []
    total = 0
    while total < n:
        m = 4 * n
        h = rng.integers(-25, 26, size=(m, 3))
        exp = rng.integers(0, n_exp, m)
        q = q_bragg(crystals, h, exp)
        ok = np.any(h != 0, axis=1) & (np.linalg.norm(q, axis=1) < 0.5)
        h, exp = h[ok], exp[ok]
        s1 = stills_predict(q_bragg(crystals, h, exp), crystals.s0[exp])[0]
        xy = ray_intersection(panels, np.zeros(len(h), int), s1)
        on = np.all((xy > 1) & (xy < 199), axis=1)
        hs.append(h[on])
        es.append(exp[on])
        xys.append(xy[on])
        total += int(on.sum())
    h, exp, xy = (np.concatenate(v)[:n] for v in (hs, es, xys))
    obs = xy + rng.normal(scale=0.03, size=xy.shape)
    refl = Reflections(h=h, exp=exp, panel=np.zeros(n, int), xy=obs, xy_cal=xy)
    moved = Panels(panels.origin + [0.0, 0, -0.5], panels.fast, panels.slow, panels.pixel_size, panels.image_size)
    return crystals, moved, refl


def loop(crystals, panels, refl, count):
    """One reflection at a time, as a hand-written script does it."""
    out = np.empty(count)
    o, f, s = panels.origin[0], panels.fast[0], panels.slow[0]
    for i in range(count):
        s0 = crystals.s0[refl.exp[i]]
        k = np.linalg.norm(s0)
        q = crystals.A[refl.exp[i]] @ refl.h[i]
        u = s0 / k
        e1 = np.cross(q, u)
        e1 /= np.linalg.norm(e1)
        c0 = np.cross(u, e1)
        c0 /= np.linalg.norm(c0)
        a = 0.5 * (q @ q) / k
        r = -a * u + np.sqrt(q @ q - a * a) * c0
        s1 = (s0 + r) / np.linalg.norm(s0 + r) * k
        lab = o + refl.xy[i, 0] * f + refl.xy[i, 1] * s
        q_pix = lab / np.linalg.norm(lab) * k - s0
        out[i] = np.linalg.norm(q_pix - (s1 - s0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reflections", type=int, default=1_000_000)
    args = parser.parse_args()
    crystals, panels, refl = synthetic(args.reflections)
    t0 = time.perf_counter()
    chk = check_experiments(crystals, panels, refl)
    t_geocal = time.perf_counter() - t0
    count = min(LOOP_SAMPLE, args.reflections)
    t0 = time.perf_counter()
    ref = loop(crystals, panels, refl, count)
    t_loop = (time.perf_counter() - t0) * args.reflections / count
    agree = np.abs(np.linalg.norm(chk.dq[:count], axis=1) - ref).max()
    print(f"{args.reflections} reflections, {crystals.A.shape[0]} stills")
    print(f"geocal q-check (vectorised, with diagnosis): {t_geocal:.2f} s")
    print(f"per-reflection loop, no diagnosis (scaled from {count}): {t_loop:.1f} s")
    print(f"ratio loop / geocal: {t_loop / t_geocal:.0f}; |Δq| agree to {agree:.1e} Å⁻¹")
    print(f"diagnosis: {chk.diagnosis.summary()}")


if __name__ == "__main__":
    main()
