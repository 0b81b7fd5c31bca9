"""Joint calibration core: motion models against pyFAI's transformations, and joint fits on
images simulated with a known geometry."""

import functools

import numpy as np
import pytest

from geocal_cli.core.geometry.frame import frame_of, make_geometry, ring_shift_px
from geocal_cli.core.geometry.units import ring_tth
from geocal_cli.core.joint.fit import joint_rounds
from geocal_cli.core.joint.model import POSE_KEYS, PRESETS, from_goniometer, preset
from geocal_cli.core.rings.controlpoints import prepare_image
from geocal_cli.core.rings.rounds import refine_rounds
from geocal_cli.core.simulate.patterns import PatternSpec, render_ring_image, ring_strengths


def _detector(name):
    import pyFAI.detectors

    return pyFAI.detectors.detector_factory(name)


def _d_spacing(name):
    from pyFAI.calibrant import get_calibrant

    return np.array(get_calibrant(name).dspacing) * 1e-10


def _image(detector, pose, d_spacing, seed, peak=3000.0, prepare=True):
    """A prepared calibrant image of one pose (dist … rot3, wavelength); without `prepare`,
    the raw image without noise."""
    tth = ring_tth(d_spacing, pose[6])
    tth = tth[np.isfinite(tth)]
    geometry = make_geometry(detector, *pose[:6], wavelength=pose[6])
    spec = PatternSpec(peak_counts=peak, width_px=1.5, background=50, seed=seed, poisson=prepare)
    data = render_ring_image(geometry, detector.shape, tth, ring_strengths(tth, None, seed), spec)
    return prepare_image(data, data >= 0) if prepare else data


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_evaluate_as_pyfai_goniometer_transformations(name):
    model = preset(name)
    rng = np.random.default_rng(1)
    theta = model.vector({}) + model.theta_scales() * rng.normal(0, 20, len(model.param_names))
    if name == "energy":
        theta[model.param_names.index("energy_scale")] = 1.0
    positions = np.array([10.0, 17.0, 30.0])
    ours = model.poses(theta, positions)
    trans = model.transformation()
    for pos, row in zip(positions, ours):
        theirs = trans(theta, pos)
        assert [getattr(theirs, k) for k in POSE_KEYS] == pytest.approx(row, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_design_is_the_derivative_of_the_poses(name):
    """All perturbed parameter vectors are evaluated at once; each column must still be the
    derivative of the poses along its own parameter."""
    model = preset(name)
    theta = model.vector({})
    if name == "energy":
        theta[model.param_names.index("energy_scale")] = 1.0
    positions = np.array([10.0, 17.0, 30.0])
    design = model.design(theta, positions)
    assert design.shape == (3, 7, len(model.param_names))
    for j, h in enumerate(model.theta_scales() * 1e-3):
        step = np.zeros_like(theta)
        step[j] = h
        column = (model.poses(theta + step, positions) - model.poses(theta - step, positions)) / (2 * h)
        assert design[:, :, j] == pytest.approx(column, rel=1e-6, abs=1e-12), model.param_names[j]


def test_translation_moves_the_detector_along_the_beam():
    """The beam centre stays and the direct-beam distance grows by the stage's travel, as
    pyFAI's Fit2D conversion of each pose says."""
    det = _detector("Pilatus1M")
    model = preset("translation")
    theta = model.vector({"direct_dist": 0.2, "center1": 0.09, "center2": 0.08,
                          "rot1": 0.03, "rot2": -0.02, "wavelength": 1e-10})
    fit2d = [make_geometry(det, *pose[:6]).getFit2D()
             for pose in model.poses(theta, np.array([0.0, 150.0, 400.0]))]
    assert [f["directDist"] for f in fit2d] == pytest.approx([200.0, 350.0, 600.0], abs=1e-9)
    for key in ("centerX", "centerY"):
        assert np.ptp([f[key] for f in fit2d]) < 1e-9


def test_seed_recovers_the_shared_parameters_from_calibrated_poses():
    model = preset("arm-2theta")
    truth = model.vector({"dist": 0.5, "poni1": 0.016, "poni2": 0.11, "rot1": 0.004,
                          "rot2_offset": -0.003, "wavelength": 0.8856e-10})
    positions = np.array([5.0, 20.0, 41.0])
    seeded = model.seed(model.poses(truth, positions), positions, model.free,
                        model.vector({"wavelength": 0.8856e-10}))
    assert seeded == pytest.approx(truth, rel=1e-9, abs=1e-12)


def test_goniometer_expressions_are_read_as_a_model():
    trans = {"param_names": ["dist", "poni1", "poni2", "rot1", "rot2_offset", "rot2_scale"],
             "pos_names": ["pos"], "dist_expr": "dist", "poni1_expr": "poni1",
             "poni2_expr": "poni2", "rot1_expr": "rot1", "rot2_expr": "rot2_scale * pos + rot2_offset",
             "rot3_expr": "0.0", "constants": {"pi": np.pi}}
    model = from_goniometer(trans, [0.9, 0.016, 0.1, -0.06, 0.0, np.pi / 180], 0.8856e-10)
    pose = model.poses(model.vector({}), np.array([30.0]))[0]
    assert pose == pytest.approx([0.9, 0.016, 0.1, -0.06, np.pi / 6, 0.0, 0.8856e-10])
    assert model.free == ("dist", "poni1", "poni2", "rot1", "rot2_offset", "rot2_scale")
    with pytest.raises(ValueError, match="wavelength"):
        from_goniometer(trans, None, None)


@functools.lru_cache(maxsize=None)
def _arm_scan(n_frames):
    """A strip detector on a 2θ arm over 5–65°, LaB6: (detector, d-spacings, model, truth,
    positions, noise-free images). Rendered once; each fit draws its own Poisson noise."""
    det = _detector("Pilatus300kw")
    dsp = _d_spacing("LaB6")
    model = preset("arm-2theta")
    truth = model.vector({"dist": 0.5, "poni1": 0.016, "poni2": 0.11, "rot1": 0.004,
                          "rot2_offset": -0.003, "wavelength": 0.8856e-10})
    positions = np.linspace(5, 65, n_frames)
    clean = [_image(det, pose, dsp, i, prepare=False)
             for i, pose in enumerate(model.poses(truth, positions))]
    return det, dsp, model, truth, positions, clean


def _arm_fit(seed, n_frames=12):
    det, dsp, model, truth, positions, clean = _arm_scan(n_frames)
    rng = np.random.default_rng(seed)
    images = [prepare_image(rng.poisson(c).astype(np.int32), c >= 0) for c in clean]
    start = truth + model.theta_scales() * rng.normal(0, 1, truth.size) * np.isin(
        model.param_names, model.free)
    result, points = joint_rounds(images, det, [dsp] * len(images), model, positions, start,
                                  model.free)
    return model, truth, result, points, det


def test_arm_scan_of_partial_rings_recovers_the_detector():
    """12 frames of a strip detector on a 2θ arm (5–65°), one to four partial rings each."""
    model, truth, result, points, det = _arm_fit(0)
    assert all(p is not None for p in points)
    # Partial rings indeed: some frame's points lie on at most two of them.
    assert min(np.unique(p.ring).size for p in points) <= 2
    for name in model.free:
        err = result.values[name] - truth[model.param_names.index(name)]
        assert abs(err) < 3 * result.sigma[name], name
    # Ring positions of every frame, predicted by the fitted model against the truth, at the
    # frame's own control points.
    for pose_fit, pose_true, p in zip(result.poses, model.poses(truth, np.linspace(5, 65, 12)),
                                      points):
        shift_px = ring_shift_px(frame_of(make_geometry(det, *pose_fit[:6])),
                                 frame_of(make_geometry(det, *pose_true[:6])), p.d1, p.d2)
        assert np.sqrt(np.mean(shift_px ** 2)) < 0.02
    assert not result.undetermined(det.pixel1)


def test_arm_scan_uncertainties_are_calibrated():
    """Over 40 repeats of the noise the truth lies within ±1σ in 68 ± 15 % of the fits (six
    frames of the scan, to keep the repeats affordable)."""
    inside = []
    for seed in range(40):
        model, truth, result, _, _ = _arm_fit(seed, n_frames=6)
        inside.append([abs(result.values[n] - truth[model.param_names.index(n)]) < result.sigma[n]
                       for n in model.free])
    fraction = np.mean(inside, axis=0)
    assert np.all((fraction > 0.53) & (fraction < 0.83)), fraction


def _stage(pixel_factor: float):
    """LaB6 on a Pilatus 1M moved along a tilted beam (150–600 mm), rendered with pixels
    `pixel_factor` times the detector file's: (detector file, d-spacings, model, truth,
    positions, prepared images)."""
    import copy

    det = _detector("Pilatus1M")
    true_det = copy.deepcopy(det)
    true_det.pixel1 *= pixel_factor
    true_det.pixel2 *= pixel_factor
    dsp = _d_spacing("LaB6")
    model = preset("translation")
    truth = model.vector({"direct_dist": 0.15, "center1": 0.086, "center2": 0.0826,
                          "rot1": -0.02, "rot2": 0.017, "wavelength": 0.7293e-10})
    positions = np.array([0.0, 100.0, 200.0, 300.0, 450.0])
    images = [_image(true_det, pose, dsp, i) for i, pose in enumerate(model.poses(truth, positions))]
    return det, dsp, model, truth, positions, images


def test_distance_series_separates_wavelength_and_distance():
    """Five distances 150–600 mm on a known stage, λ free and started 0.3 % off: a single
    image gives only distance × λ; the series gives each."""
    det, dsp, model, truth, positions, images = _stage(1.0)
    lam = truth[model.param_names.index("wavelength")]
    start = truth.copy()
    start[model.param_names.index("wavelength")] *= 1.003
    start[model.param_names.index("direct_dist")] *= 1.003
    result, _ = joint_rounds(images, det, [dsp] * 5, model, positions, start, model.free)
    assert result.values["wavelength"] == pytest.approx(lam, rel=2e-5)
    assert result.values["direct_dist"] == pytest.approx(0.15, abs=2e-5)
    assert not result.undetermined(det.pixel1)


def test_two_calibrants_at_one_geometry_beat_either_alone():
    """AgBh (inner rings) and LaB6 (outer rings) at one geometry: the beam centre and tilts
    are known better jointly than from either image, and the truth lies within 3σ."""
    det = _detector("Pilatus1M")
    model = preset("calibrants")
    values = {"dist": 0.35, "poni1": 0.09, "poni2": 0.08, "rot1": 0.012, "rot2": -0.008, "rot3": 0.0,
              "wavelength": 1.0e-10}
    truth = model.vector(values)
    dsps = [_d_spacing("AgBh")[:12], _d_spacing("LaB6")]
    images = [_image(det, truth, d, i, peak=800.0) for i, d in enumerate(dsps)]
    alone = [refine_rounds(img, det, d, dict(values), model.free)[0] for img, d in zip(images, dsps)]
    joint, _ = joint_rounds(images, det, dsps, model, np.zeros(2), truth, model.free)
    for name in ("poni1", "poni2", "rot1", "rot2"):
        assert joint.sigma[name] < min(a.sigma[name] for a in alone), name
        assert abs(joint.values[name] - values[name]) < 3 * joint.sigma[name], name


def test_fixed_series_with_free_wavelength_names_what_it_cannot_separate():
    """Several exposures of one setup at small angles say nothing more of λ than one does:
    λ and the distance are reported as not determined, never fitted to noise."""
    det = _detector("Pilatus1M")
    dsp = _d_spacing("AgBh")[:8]
    model = preset("fixed")
    truth = model.vector({"dist": 1.5, "poni1": 0.09, "poni2": 0.08, "wavelength": 1.0e-10})
    images = [_image(det, truth, dsp, i) for i in range(3)]
    result, _ = joint_rounds(images, det, [dsp] * 3, model, np.zeros(3), truth,
                             model.free + ("wavelength",))
    undetermined = {u[0]: u for u in result.undetermined(det.pixel1)}
    assert "wavelength" in undetermined
    pairs = {frozenset(p[:2]) for p in undetermined["wavelength"][3]}
    assert frozenset(("dist", "wavelength")) in pairs


def test_arcs_of_frames_that_cannot_calibrate_alone_start_the_arm_blind():
    """A strip detector far out on an arm: one ring arc per frame, nothing calibrates alone.
    The search over the arcs of all frames finds each arc's ring, and the joint fit from
    there puts every frame's rings where the truth does."""
    from geocal_cli.core.joint.arcs import image_arcs, search_arcs
    from geocal_cli.core.rings.start import find_ring_ridges

    det = _detector("Pilatus300kw")
    dsp = _d_spacing("LaB6")
    model = preset("arm-2theta")
    lam = 0.8856e-10
    truth = model.vector({"dist": 0.92, "poni1": 0.016, "poni2": 0.104, "rot1": -0.06,
                          "rot2_offset": -0.0006, "wavelength": lam})
    positions = np.array([11.12, 20.64, 26.76])
    poses = model.poses(truth, positions)
    raw = []
    for i, pose in enumerate(poses):
        tth = ring_tth(dsp, lam)
        geometry = make_geometry(det, *pose[:6], wavelength=lam)
        spec = PatternSpec(peak_counts=2000, width_px=2.0, background=30, seed=i)
        raw.append(render_ring_image(geometry, det.shape, tth[np.isfinite(tth)],
                                     np.ones(np.isfinite(tth).sum()), spec))
    arcs = [image_arcs(find_ring_ridges(d.astype(float), d >= 0)) for d in raw]
    start = search_arcs(det, model, positions, arcs, [dsp] * 3, model.vector({"wavelength": lam}),
                        model.free)
    true_rings = []
    for pose in poses:
        frame = frame_of(make_geometry(det, *pose[:6]))
        t = frame.tth(*np.meshgrid(np.arange(det.shape[0]), np.arange(det.shape[1]),
                                   indexing="ij"))
        tth = ring_tth(dsp, lam)
        true_rings.append(np.nonzero((tth > np.nanmin(t)) & (tth < np.nanmax(t)))[0].tolist())
    assert [sorted(set(r)) for r in start.rings] == true_rings
    images = [prepare_image(d, d >= 0) for d in raw]
    result, points = joint_rounds(images, det, [dsp] * 3, model, positions, start.theta,
                                  model.free)
    for pose_fit, pose_true, p in zip(result.poses, poses, points):
        shift_px = ring_shift_px(frame_of(make_geometry(det, *pose_fit[:6])),
                                 frame_of(make_geometry(det, *pose_true[:6])), p.d1, p.d2)
        assert np.sqrt(np.mean(shift_px ** 2)) < 0.05


def test_a_distance_series_measures_a_planted_pixel_size_error():
    """Pixels 0.5 % larger than the detector file says (rendered with pyFAI's own detector
    at the true size): known stage steps fix the pixel scale, λ free too."""
    det, dsp, model, truth, positions, images = _stage(1.005)
    lam = truth[model.param_names.index("wavelength")]
    result, _ = joint_rounds(images, det, [dsp] * 5, model, positions, truth,
                             model.free + ("pixel_scale",))
    assert result.values["pixel_scale"] == pytest.approx(1.005, rel=5e-4)
    assert abs(result.values["pixel_scale"] - 1.005) < 3 * result.sigma["pixel_scale"] + 1e-5
    assert result.values["wavelength"] == pytest.approx(lam, rel=2e-5)
    assert result.values["direct_dist"] == pytest.approx(0.15, abs=2e-5)


def test_an_energy_scan_finds_the_monochromator_offset():
    """One geometry, four monochromator energies all 50 eV higher than the motor says: the
    offset comes out within 3σ, and with it each image's wavelength, which one image alone
    cannot separate from the distance."""
    det = _detector("Pilatus1M")
    dsp = _d_spacing("LaB6")
    model = preset("energy")
    truth = model.vector({"dist": 0.25, "poni1": 0.09, "poni2": 0.08, "rot1": 0.01,
                          "rot2": -0.015, "energy_offset": 0.05})
    energies = np.array([12.0, 15.0, 20.0, 25.0])
    images = [_image(det, pose, dsp, i) for i, pose in enumerate(model.poses(truth, energies))]
    start = truth.copy()
    start[model.param_names.index("energy_offset")] = 0.0
    result, _ = joint_rounds(images, det, [dsp] * 4, model, energies, start, model.free)
    off, sig = result.values["energy_offset"], result.sigma["energy_offset"]
    assert abs(off - 0.05) < 3 * sig and sig < 1e-3
    lam_true = model.poses(truth, energies)[:, 6]
    assert result.poses[:, 6] == pytest.approx(lam_true, rel=1e-5)
    assert result.values["dist"] == pytest.approx(0.25, abs=2e-5)
