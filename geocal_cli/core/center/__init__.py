"""A new beam centre for a known geometry, the engine of `recenter`.

From rings (`ringcenter`: the reference pattern moved rigidly in the detector plane, with the
projector-lens ellipticity of electron microscopes optionally fitted), from the direct beam
(`directbeam`: a 2-D Gaussian on the unsaturated shoulder) or from the Friedel pairs of a
zone-axis spot pattern (`friedel`), with the background filter they share (`filters`).
It imports `geocal_cli.core.rings` because the ring method samples the rings with the same
control points and search windows as the blind calibration (`rings.controlpoints`,
`rings.rounds`): one peak finder, one notion of where a ring is.
"""
