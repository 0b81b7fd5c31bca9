"""Electron diffraction as a microscope sees it.

`lens`: the model of a TEM ring pattern, an untilted detector at the camera length whose
rings the projector lens stretches into concentric ellipses of one axis ratio and
orientation, fitted to a calibrant's rings for the camera length, the stretch and the ring
centre, with 1σ that include the rings' scatter about one another.

Reuses `geocal_cli.core.rings` (control points from multi-peak profiles, the rounds' notion
of which rings fall on the detector, per-ring centres) and `geocal_cli.core.center` (the
ring-centre fit with the lens stretch, here with the rings tied to the calibrant).
"""
