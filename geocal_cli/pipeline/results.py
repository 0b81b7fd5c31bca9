"""What a subcommand's run wrote, read off its result (shared by the command line and batch)."""

from __future__ import annotations

from pathlib import Path


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
