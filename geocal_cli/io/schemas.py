"""JSON Schemas (draft 2020-12) of geocal's reports, one per report name.

A schema fixes what a program reading the reports may rely on: the common header (schema
name and version, provenance, config, inputs and outputs with SHA-256, warnings) and each
command's key results with their types and units (in the key names). Sections not listed
may carry more keys than the schema names (diagnostics grow); the keys listed are required.
`geocal schema NAME` prints one; the tests validate real reports against them.
"""

from __future__ import annotations

DRAFT = "https://json-schema.org/draft/2020-12/schema"

NUM = {"type": "number"}
#: A measured value that may be missing (non-finite numbers are written as null).
NUM_OR_NULL = {"type": ["number", "null"]}
INT = {"type": "integer"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
STRINGS = {"type": "array", "items": STR}
SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


def obj(required: dict, optional: dict | None = None, closed: bool = False) -> dict:
    """An object schema whose `required` keys must be present.

    Parameters
    ----------
    required, optional : dict
        Key → schema.
    closed : bool
        No keys beyond those named.

    Returns
    -------
    dict
    """
    return {"type": "object", "properties": {**required, **(optional or {})},
            "required": list(required), "additionalProperties": not closed}


def array(items: dict, min_items: int = 0) -> dict:
    """An array schema of `items`."""
    return {"type": "array", "items": items, "minItems": min_items}


FILE = obj({"path": STR, "bytes": {"type": "integer", "minimum": 0}, "sha256": SHA256})
XY = obj({"x": NUM, "y": NUM})
XY_OR_NULL = obj({"x": NUM_OR_NULL, "y": NUM_OR_NULL})
PROVENANCE = obj({"created_utc": {"type": "string", "format": "date-time"}, "command_line": STR,
                  "versions": obj({k: {"type": ["string", "null"]} for k in
                                   ("geocal", "python", "pyFAI", "fabio", "numpy", "scipy")})})
GEOMETRY = obj({
    "poni": obj({"dist_m": NUM, "poni1_m": NUM, "poni2_m": NUM, "rot1_rad": NUM, "rot2_rad": NUM,
                 "rot3_rad": NUM, "wavelength_m": NUM, "detector": STR,
                 "orientation": {"type": "integer", "minimum": 1, "maximum": 4}}),
    "fit2d": obj({k: NUM for k in ("directDist_mm", "centerX_px", "centerY_px", "tilt_deg",
                                  "tiltPlanRotation_deg", "pixelX_um", "pixelY_um")}),
    "beam_center_px": obj({"x": NUM, "y": NUM, "convention": STR}),
    "energy_kev": NUM})
RING_RESIDUAL = obj({"ring": {"type": "integer", "minimum": 1}, "rms_px": NUM_OR_NULL})
RINGS_SEEN = obj({"rings": {"type": "array"}, "calibrant_ranking": {"type": "array"}})
TIMINGS = {"type": "object", "additionalProperties": NUM}


def header(name: str, warnings: bool = True, **sections) -> dict:
    """A report's schema: the common header plus `sections` (key → schema, required);
    `warnings` False for a report that states its doubts in sections of its own."""
    return {"$schema": DRAFT, "$id": f"https://geocal/schemas/{name}.json", "title": f"geocal {name} report",
            **obj({"schema": obj({"name": {"const": f"geocal.{name}"}, "version": {"const": 1}}),
                   "geocal_version": STR, "provenance": PROVENANCE, "config": {"type": "object"},
                   "inputs": array(FILE), "outputs": array(FILE),
                   **({"warnings": STRINGS} if warnings else {}), **sections},
                  {"notes": STRINGS, "timings_s": TIMINGS, "warnings": STRINGS})}


ELECTRON = obj({"camera_length_mm": NUM, "reciprocal_per_px_a": obj({"minor_axis": NUM}),
                "mrad_per_px": NUM, "axis_ratio": NUM, "major_axis_deg": NUM, "center_px": XY,
                "wavelength_a": NUM})

SCHEMAS = {
    "calib-ring": header(
        "calib-ring",
        results=obj({"geometry": GEOMETRY, "calibrant": STR, "calibrant_source": STR,
                     "fixed": STRINGS, "refined": STRINGS, "sources": {"type": "object"}},
                    {"electron": ELECTRON, "tilted_start": GEOMETRY}),
        uncertainties_1sigma=obj({"beam_center_px": XY_OR_NULL}),
        correlation=obj({"parameters": STRINGS, "matrix": {"type": "array"}}),
        residuals=obj({"control_points": INT, "rejected": INT, "rms_px": NUM,
                       "points_scatter_px": NUM_OR_NULL, "model_misfit_px": NUM_OR_NULL,
                       "rings": array(RING_RESIDUAL, 1)},
                      {"ring_offset_px": NUM_OR_NULL, "profile_skew_px": NUM_OR_NULL}),
        rings_seen=RINGS_SEEN),
    "recenter": header(
        "recenter",
        results=obj({"method": {"enum": ["ring", "friedel", "beam"]},
                     "old_center": obj({"x_px": NUM, "y_px": NUM, "x_m": NUM, "y_m": NUM}),
                     "new_center": obj({"x_px": NUM, "y_px": NUM, "x_m": NUM, "y_m": NUM}),
                     "shift": obj({"x_px": NUM, "y_px": NUM, "length_px": NUM}),
                     "new_poni": obj({"poni1_m": NUM, "poni2_m": NUM, "kept": STRINGS})}),
        uncertainties_1sigma=obj({"center_px": XY_OR_NULL}),
        residuals=obj({"rms_px": NUM_OR_NULL})),
    "q-check": header(
        "q-check",
        mode={"enum": ["powder", "stills"]},
        results=obj({"q_convention": STR, "overall": obj({"points": INT}),
                     "diagnosis": obj({"systematic": BOOL, "summary": STR})}),
        verdict=obj({"status": {"enum": ["ok", "flagged"]}, "reasons": STRINGS})),
    "convert-poni": header(
        "convert-poni",
        results=obj({"from": STR, "to": STR, "output": STR, "written": {"type": "object"},
                     "poni": obj({k: NUM for k in ("dist", "poni1", "poni2", "rot1", "rot2", "rot3")})}),
        self_check=obj({"max_abs_dtth_rad": NUM, "exact": BOOL})),
    "grid-distortion": header(
        "grid-distortion",
        results=obj({"source": STR, "pixel_size_um": XY}),
        convention=STR),
    "simulate": header(
        "simulate",
        results=obj({"shape": array(INT, 2), "truth": {"type": ["object", "null"]}})),
    "joint": header(
        "joint", warnings=False,
        model=obj({"name": STR, "param_names": STRINGS}),
        shared={"type": "object", "additionalProperties": obj({"value": NUM_OR_NULL, "sigma": NUM_OR_NULL,
                                                               "fixed": BOOL})},
        images=array(obj({"image": STR, "poni": STR, "pose": {"type": "object"}, "rms_px": NUM_OR_NULL,
                          "points_scatter_px": NUM_OR_NULL, "model_misfit_px": NUM_OR_NULL}), 1),
        residuals=obj({"rms_px": NUM_OR_NULL, "points": INT}),
        problems=STRINGS, undetermined=STRINGS),
    "batch": {"$schema": DRAFT, "$id": "https://geocal/schemas/batch.json", "title": "geocal batch summary",
              **obj({"schema": obj({"name": {"const": "geocal.batch"}, "version": {"const": 1}}),
                     "geocal_version": STR, "provenance": PROVENANCE, "subcommand": STR,
                     "items": INT, "counts": obj({"ok": INT, "failed": INT, "skipped": INT}),
                     "duration_s": NUM, "failures": {"type": "array"},
                     "records": array(obj({"input": STR, "input_sha256": SHA256,
                                           "status": {"enum": ["ok", "failed", "skipped"]},
                                           "exit_code": INT, "outputs": {"type": "array"}}))})},
    "ellipse": {"$schema": DRAFT, "$id": "https://geocal/schemas/ellipse.json",
                "title": "geocal ellipse file (electron lens model)",
                **obj({"schema": {"const": "geocal.ellipse"}, "geocal_version": STR, "center": XY, "axis_ratio": NUM,
                       "major_axis_deg": NUM, "camera_length_mm": NUM,
                       "py4DSTEM": obj({"p_ellipse": array(NUM, 5)})})},
}


def schema_for(name: str) -> dict:
    """The schema of report `name` ("calib-ring", "batch" …; "geocal." prefix allowed).

    Raises
    ------
    KeyError
        Not a report geocal writes.
    """
    return SCHEMAS[name.removeprefix("geocal.")]
