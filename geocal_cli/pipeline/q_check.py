"""`q-check` pipeline: a geometry's q consistency, on a powder image or on DIALS stills.

Powder: control points on every usable calibrant ring (calib-ring's extraction rounds, which
follow the rings even when the geometry is off by many pixels) are compared with the rings'
q under the geometry as given. Stills: every indexed reflection's q from the crystal model,
from its pixel and from the table. Both end in a diagnosis of the detector/beam parameter
(or discrete slip) behind the residuals, a report, an optional plot, and a verdict.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocal_cli.config.base import to_plain
from geocal_cli.config.q_check import QCheckConfig
from geocal_cli.errors import CalibrationError, InputFileError
from geocal_cli.io.calibrants import calibrant_file
from geocal_cli.io.outputs import Outputs, committing, default_name
from geocal_cli.io.reports import report_header, write_report

SCHEMA = "geocal.q-check"
POWDER_Q = "q = 4π sin θ / λ (pyFAI), Å⁻¹; q_ring = 2π / d; Δd/d = q_ring / q_pixel − 1"
STILLS_Q = "q = s1 − s0 with |s0| = |s1| = 1/λ (DIALS, no 2π), Å⁻¹, laboratory frame"


@dataclass(frozen=True)
class QCheckResult:
    """What `run` produced: the report, the files written and the verdict."""

    report: dict
    report_path: Path
    plot: Path | None
    failed: list


def default_report(cfg: QCheckConfig) -> Path:
    """<input stem>.qcheck.json in the current folder."""
    return default_name(cfg.image if cfg.mode == "powder" else cfg.expt, ".qcheck.json")


def run(cfg: QCheckConfig, progress=None) -> QCheckResult:
    """Check the geometry of `cfg` and write the report (and plot).

    The report is written whether or not the check passes; `failed` lists why it did not.

    Raises
    ------
    InputFileError
        Unreadable or inconsistent inputs (see the mode's reader).
    ConfigError
        Unknown calibrant, no wavelength.
    CalibrationError
        No control points on the calibrant's rings near the geometry.
    """
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    report_path = cfg.report or default_report(cfg)
    inputs = ([cfg.image, cfg.poni, cfg.mask, calibrant_file(cfg.calibrant)] if cfg.mode == "powder"
              else [cfg.expt, cfg.refl])
    outputs = Outputs.planned(inputs, cfg.overwrite, report_path, cfg.plot)
    if cfg.mode == "powder":
        report, plot_args, failed = _powder(cfg, say)
    else:
        report, plot_args, failed = _stills(cfg, say)
    full = report_header(SCHEMA, to_plain(cfg), inputs)
    full.update(report)
    full["verdict"] = {"status": "flagged" if failed else "ok", "reasons": failed}
    with committing(outputs):
        if cfg.plot:
            from geocal_cli.io import plots

            (plots.plot_q_powder if cfg.mode == "powder" else plots.plot_q_stills)(cfg.plot, **plot_args)
        full["timings_s"] = {"total": time.perf_counter() - t0}
        write_report(report_path, full)
    return QCheckResult(report=full, report_path=report_path, plot=cfg.plot, failed=failed)


def _powder(cfg: QCheckConfig, say) -> tuple[dict, dict, list]:
    from geocal_cli.core.rings.controlpoints import prepare_image
    from geocal_cli.core.geometry.frame import PARAM_NAMES, frame_of
    from geocal_cli.core.q.powder import check_powder, stats
    from geocal_cli.core.rings.rounds import refine_rounds
    from geocal_cli.core.geometry.units import ring_tth
    from geocal_cli.io.calibrants import load_calibrant
    from geocal_cli.pipeline._inputs import flip_verdict, load_image_and_geometry
    from geocal_cli.pipeline.results import integration_view, shorten

    inputs = load_image_and_geometry(cfg)
    geometry, valid, data = inputs.geometry, inputs.valid, inputs.image.data
    wavelength = inputs.wavelength
    scattering = "electron" if (cfg.voltage_kv is not None or inputs.image.metadata.get("voltage_kv")) else "xray"
    calibrant = load_calibrant(cfg.calibrant, scattering)
    d = np.asarray(calibrant.d_spacing, float)
    say(f"read {cfg.image} ({data.shape[0]}×{data.shape[1]}, {valid.mean():.0%} valid), "
        f"{calibrant.name}, λ = {wavelength * 1e10:.5f} Å ({inputs.wavelength_source})")
    values = {k: float(getattr(geometry, k)) for k in PARAM_NAMES} | {"wavelength": wavelength}
    try:
        fit, cp = refine_rounds(prepare_image(data, valid), geometry.detector, d, values,
                                ("dist", "poni1", "poni2", "rot1", "rot2"), say=say)
    except CalibrationError as exc:
        raise CalibrationError(f"{exc} (near the geometry of {cfg.poni}: is it for this image?)") from None
    cp = cp.subset(fit.inliers)
    frame = frame_of(geometry)
    try:
        chk = check_powder(frame, cp, d, wavelength)
    except ValueError as exc:
        raise CalibrationError(f"too few control points to check the geometry: {exc}") from None
    overall = stats(chk.dq, chk.strain, chk.geometric_strain)
    diag = chk.diagnosis
    say(f"{len(cp)} control points on {len(chk.rings)} rings: median geometric |Δd/d| "
        f"{overall['geometric_median_abs_microstrain']:.0f} µε; {diag.summary()}")
    failed = []
    if diag.systematic and cfg.fail_on_systematic:
        failed.append(diag.summary())
    if overall["geometric_median_abs_microstrain"] > cfg.max_median_microstrain:
        failed.append(f"median geometric |Δd/d| {overall['geometric_median_abs_microstrain']:.0f} µε "
                      f"exceeds --max-median-microstrain {cfg.max_median_microstrain:g}")
    # A geometry made for a flipped array looks like a large centre and tilt error; the
    # rating is cheap (~20 ms), so every check has it.
    flips, flipped = flip_verdict(data, valid, frame, ring_tth(d, wavelength))
    diagnosis = diag.as_dict()
    if flipped:
        failed.insert(0, flipped)
        diagnosis["summary"] = flipped
    seen_section, warnings = _calibrant_check(data, valid, frame, cp, calibrant, wavelength,
                                              failed)
    sector = np.clip(((cp.chi + np.pi) / (2 * np.pi) * 36).astype(int), 0, 35)
    by_chi = [{"chi_deg": -180 + 10 * k + 5, "points": int((sector == k).sum()),
               "median_microstrain": float(np.median(chk.strain[sector == k]) * 1e6)}
              for k in range(36) if (sector == k).any()]
    for ring in chk.rings:
        ring["median_radius_mm"] = float(np.median(chk.radius_mm[cp.ring == ring["ring"] - 1]))
    report = {
        "mode": "powder",
        "results": {
            "q_convention": POWDER_Q, "calibrant": calibrant.name, "wavelength_m": wavelength,
            "wavelength_source": inputs.wavelength_source,
            "overall": overall, "rings": chk.rings, "by_chi": by_chi,
            "geometric_strain": "per ring, the χ harmonics of orders 0–2 of Δd/d (what a geometry "
                                "error can produce); scatter = the rest",
            "diagnosis": diagnosis,
            "flip_check": [
                {"flip": f.name, "points": f.points, "median_offset_px": f.median_offset_px,
                 "fits": f.fits} for f in flips],
        },
        "rings_seen": seen_section,
        "residuals": {"points": len(cp), "rejected_by_extraction": int((~fit.inliers).sum())},
        "warnings": warnings,
    }
    plot_args = {"image": data, "valid": valid, "check": chk,
                 "title": f"{Path(cfg.image).name} with {Path(cfg.poni).name}: "
                          + (f"FAILED: {shorten(failed[0])}" if failed else diagnosis["summary"]),
                 "calibrant": calibrant.name,
                 # Integrated while a plot helper draws the panels above it.
                 "integration": functools.partial(integration_view, data, valid, frame,
                                                  ring_tth(d, wavelength),
                                                  [r["ring"] for r in chk.rings], seen_section)
                 if cfg.plot else None}
    return report, plot_args, failed


def _calibrant_check(data, valid, frame, cp, calibrant, wavelength: float,
                     failed: list) -> tuple[dict, list]:
    """The rings of the image under the geometry checked (`core.rings.audit`, as calib-ring
    audits its fits): rings no calibrant reflection explains are warned about, and the check
    fails when another calibrant replaces the given one or the geometry puts the calibrant's
    rings on the wrong reflections.

    Returns
    -------
    rings_seen : dict
        The report's section (`calib_ring.rings_seen`).
    warnings : list of str
    """
    from geocal_cli.core.geometry.units import ring_tth
    from geocal_cli.core.rings.audit import audit, calibrant_families
    from geocal_cli.core.rings.seen import seen_rings
    from geocal_cli.io.calibrants import candidate_calibrants
    from geocal_cli.pipeline.calib_ring import rings_seen

    d = np.asarray(calibrant.d_spacing, float)
    candidates = {calibrant.name: (d, calibrant.mf2()),
                  **{k: v for k, v in candidate_calibrants().items() if k != calibrant.name}}
    families = calibrant_families(candidates)
    width = float(np.median(cp.width))
    rings, points = np.unique(cp.ring, return_counts=True)
    a = audit(seen_rings(data, valid, frame, width), ring_tth(d, wavelength), rings, points,
              calibrant.name, candidates, wavelength, None)
    replaced = a.better_calibrant(families)
    if replaced is not None:
        better, given = replaced
        failed.insert(0, f"the rings fit {better.describe()}, not {given.describe()}: the "
                         "calibrant is wrong (ranking: "
                         + ", ".join(s.describe() for s in a.top(families)) + ")")
    elif not a.assignment_trusted:
        failed.insert(0, f"the geometry puts {calibrant.name}'s rings on the wrong reflections: "
                         f"{calibrant.name} at another distance explains the image's rings "
                         f"better ({a.best_distance.explained} of {a.best_distance.counted})")
    warnings = []
    foreign = a.foreign
    if foreign.size:
        warnings.append(f"{foreign.size} strong ring(s) of the image are not {calibrant.name}'s "
                        "(2θ = " + ", ".join(f"{np.degrees(x):.3f}°" for x in a.seen.tth[foreign])
                        + "): another phase, a contamination, or the wrong calibrant")
    return rings_seen(a, families, wavelength), warnings


def _reflections(cfg: QCheckConfig, models, table):
    """The checked reflections of `table` as `core.q.stills.Reflections`, and notes.

    Raises
    ------
    InputFileError
        Missing columns, no panel column on a multi-panel detector, or identifiers that do
        not match the experiment list.
    """
    from geocal_cli.core.q.stills import Reflections

    col = table.columns
    pos = "xyzobs.mm.value" if cfg.positions == "obs" else "xyzcal.mm"
    missing = [k for k in ("id", "miller_index", pos) if k not in col]
    if missing:
        raise InputFileError(f"{cfg.refl}: missing column(s) {', '.join(missing)} "
                             f"(q-check needs indexed reflections: dials.index or dials.refine output)")
    if "panel" not in col and np.any(models.n_panels > 1):
        raise InputFileError(f"{cfg.refl}: no 'panel' column, but the detector of {cfg.expt} has "
                             f"{int(models.n_panels.max())} panels: the positions cannot be placed")
    ids = col["id"].astype(int)
    n_exp = len(models.identifiers)
    exp = np.full(ids.size, -1)
    if table.identifiers:
        lookup = {ident: i for i, ident in enumerate(models.identifiers)}
        for table_id, ident in table.identifiers.items():
            if ident not in lookup:
                raise InputFileError(f"{cfg.refl}: experiment identifier {ident!r} (id {table_id}) is "
                                     f"not in {cfg.expt}: the files do not belong together")
            exp[ids == table_id] = lookup[ident]
    else:
        exp = np.where((ids >= 0) & (ids < n_exp), ids, -1)
    if np.any((ids >= 0) & (exp < 0)):
        bad = sorted(set(ids[(ids >= 0) & (exp < 0)].tolist()))[:5]
        raise InputFileError(f"{cfg.refl}: reflection ids {bad} match no experiment of {cfg.expt} "
                             f"({n_exp} experiments)")
    h = col["miller_index"].astype(int)
    xyz = col[pos]
    keep = (exp >= 0) & np.any(h != 0, axis=1) & np.all(np.isfinite(xyz[:, :2]), axis=1)
    panel = col["panel"].astype(int) if "panel" in col else np.zeros(ids.size, int)
    if np.any(panel[keep] >= models.n_panels[exp[keep]]):
        raise InputFileError(f"{cfg.refl}: a panel number exceeds the detector's panels in {cfg.expt}")
    phi = np.where(models.rotation[exp], xyz[:, 2], 0.0) if models.rotation.any() else None
    refl = Reflections(h=h, exp=exp, panel=models.panel_offset[np.maximum(exp, 0)] + panel,
                       xy=xyz[:, :2], phi=phi,
                       xy_cal=col["xyzcal.mm"][:, :2] if "xyzcal.mm" in col else None,
                       s1=col.get("s1")).subset(np.nonzero(keep)[0])
    notes = []
    if (~keep).any():
        notes.append(f"{int((~keep).sum())} unindexed or unplaced reflections left out")
    if models.rotation.any():
        notes.append(f"rotation data: q_bragg at each reflection's φ ({pos} z)")
    return refl, notes


def _stills(cfg: QCheckConfig, say) -> tuple[dict, dict, list]:
    from geocal_cli.core.q.stills import check_experiments
    from geocal_cli.io.dials_models import read_experiments
    from geocal_cli.io.dials_refl import read_reflections

    models = read_experiments(cfg.expt, cfg.fix_units)
    table = read_reflections(cfg.refl)
    refl, notes = _reflections(cfg, models, table)
    if refl.h.shape[0] < 20:
        raise InputFileError(f"{cfg.refl}: {refl.h.shape[0]} indexed reflections; q-check needs at least 20")
    say(f"read {len(models.identifiers)} experiments and {refl.h.shape[0]} indexed reflections")
    try:
        chk = check_experiments(models.crystals, models.panels, refl)
    except ValueError as exc:
        raise InputFileError(f"{cfg.expt}: {exc}") from None
    dq = np.linalg.norm(chk.dq, axis=1)
    # One sort instead of a mask per experiment: thousands of stills × 10⁶ reflections.
    order = np.argsort(refl.exp, kind="stable")
    bounds = np.searchsorted(refl.exp[order], np.arange(len(models.identifiers) + 1))
    per = [{"experiment": i, "identifier": ident, "reflections": int(hi - lo),
            **_vector_stats(dq[order[lo:hi]], chk, order[lo:hi])}
           for i, (ident, lo, hi) in enumerate(zip(models.identifiers, bounds[:-1], bounds[1:])) if hi > lo]
    diag, slip = chk.diagnosis, chk.slip
    failed = []
    if slip is not None:
        failed.append(f"residuals vanish (rms |Δq| {slip.rms_before:.2e} → {slip.rms_after:.2e} Å⁻¹) "
                      f"with {slip.text()}")
    if diag.systematic and cfg.fail_on_systematic:
        failed.append(diag.summary())
    if cfg.max_mean_dq is not None and dq.mean() > cfg.max_mean_dq:
        failed.append(f"mean |Δq| {dq.mean():.2e} Å⁻¹ exceeds --max-mean-dq {cfg.max_mean_dq:g}")
    summary = (f"{slip.text()} (then: {diag.summary()})" if slip else diag.summary())
    say(f"mean |Δq| {dq.mean():.2e} Å⁻¹ over {dq.size} reflections; {summary}")
    report = {
        "mode": "stills",
        "results": {
            "q_convention": STILLS_Q, "positions": cfg.positions,
            "overall": {"experiments": len(per), **_vector_stats(dq, chk, slice(None))},
            "experiments": per,
            "table_consistency": chk.table,
            "diagnosis": {**diag.as_dict(), "summary": summary},
            "slip": None if slip is None else {"kind": slip.kind, "description": slip.description,
                                               "equivalent": list(slip.alternatives),
                                               "rms_before": slip.rms_before, "rms_after": slip.rms_after},
        },
        "residuals": {"reflections": int(dq.size)},
        "warnings": notes + models.notes,
    }
    plot_args = {"panels": models.panels, "refl": refl, "check": chk,
                 "title": f"{Path(cfg.expt).name}: {summary}"}
    return report, plot_args, failed


def _vector_stats(dq: np.ndarray, chk, on) -> dict:
    """|Δq| statistics plus excitation error, Δψ and position error of a set of reflections."""
    return {"mean_abs_dq": float(dq.mean()), "median_abs_dq": float(np.median(dq)),
            "rms_dq": float(np.sqrt(np.mean(dq**2))), "max_abs_dq": float(dq.max()),
            "mean_abs_excitation": float(np.abs(chk.excitation[on]).mean()),
            "rms_delpsi_deg": float(np.degrees(np.sqrt(np.mean(chk.delpsi[on] ** 2)))),
            "rmsd_position_px": float(np.sqrt(np.mean(chk.position_error_px[on] ** 2)))}
