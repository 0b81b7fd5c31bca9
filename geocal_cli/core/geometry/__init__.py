"""The shared ground of every capability: where each pixel sits, in pyFAI's model and others'.

`frame` turns the six PONI parameters and a detector into a `DetectorFrame` (origin and two
axis vectors in the laboratory) and back, and gives 2θ, χ, the beam centre and rings drawn
on pixels; `units` converts energies, electron voltages and wavelengths and gives Bragg
angles; `flips` re-expresses a geometry for a flipped or transposed array; `displacement`
holds pyFAI's detector displacement fields and their gauge; `metrics` measures the distance
between two geometries on the rings; `conventions` maps the frames of DIALS, GSAS-II,
ImageD11 and xrayutilities/cdiutils. Used by every subcommand; it imports no other capability.
"""
