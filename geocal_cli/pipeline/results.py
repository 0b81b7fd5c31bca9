"""What a subcommand's run wrote, read off its result (shared by the command line and batch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def shorten(text, limit: int = 160) -> str:
    """A message cut to one line of a summary or a plot title (reports keep it whole)."""
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def written(result) -> list[Path]:
    """The files a run wrote: its main file (`poni`) or its `outputs`, the report and the plot,
    in that order, leaving out those it did not write (None)."""
    return [Path(p) for p in (getattr(result, "poni", None), *getattr(result, "outputs", ()),
                              result.report_path, getattr(result, "plot", None)) if p]


def ring_centres_summary(centres, numbers=None) -> dict | None:
    """Each ring's shift from the fitted common centre (`core.rings.concentric.RingCentres`)
    and their spread, for a report; `numbers` maps the rings' indices to the calibrant ring
    numbers the report uses (default index + 1)."""
    if centres is None:
        return None
    number = (lambda k: int(numbers[k])) if numbers is not None else (lambda k: int(k) + 1)
    return {"spread_px": centres.spread_px, "beam_center_sigma_added_px": centres.centre_sigma_px,
            "note": "rms per axis of the rings' own centre shifts beyond their noise; the beam "
                    "centre's 1σ includes spread / √rings",
            "rings": [{"ring": number(k), "shift_px": {"x": float(s[1]), "y": float(s[0])},
                       "sigma_px": float(e)}
                      for k, s, e in zip(centres.ring, centres.shift_px, centres.sigma_px)]}


def misfit_summary(m) -> dict:
    """The report's split of the residual (`core.rings.misfit.Misfit`, or None): the control
    points' own scatter and the geometry's misfit, pixels (None where undetermined)."""
    ok = m is not None and np.isfinite(m.scatter_px)
    return {"points_scatter_px": float(m.scatter_px) if ok else None,
            "model_misfit_px": float(m.misfit_px) if ok else None}


def integration_view(image, valid, frame, ring_tth, used, rings_seen: dict | None = None):
    """The integration check of a plot (`io.plots.IntegrationView`): the image integrated
    under `frame` and where the calibrant's rings fall.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    valid : ndarray of bool, shape (H, W)
    frame : DetectorFrame
        The fitted model.
    ring_tth : ndarray, shape (K,)
        2θ (radians) of every calibrant ring (NaN beyond 90°).
    used : sequence of int
        Calibrant ring numbers (1-based) the fit used.
    rings_seen : dict, optional
        A report's "rings_seen" section: its counted rings that no calibrant ring explains
        are marked as foreign.

    Returns
    -------
    IntegrationView
    """
    from geocal_cli.core.rings.integration import integrate
    from geocal_cli.io.plots import IntegrationView

    integ = integrate(image, valid, frame)
    tth = np.asarray(ring_tth, float)
    numbers = np.unique(np.asarray(used, int))
    top = integ.tth[-1] if integ.tth.size else 0.0
    rest = np.delete(tth, numbers - 1)
    foreign = [np.radians(r["tth_deg"]) for r in (rings_seen or {}).get("rings", [])
               if r["counted"] and r["calibrant_ring"] is None]
    return IntegrationView(integ, tth[numbers - 1], numbers,
                           rest[np.isfinite(rest) & (rest <= top)], np.asarray(foreign, float))
