"""q-vector consistency of a geometry, the engine of `q-check`, and the flip rating.

Powder (`powder`): control points' q against their rings'. Stills (`stills`): indexed DIALS
reflections' q from the crystal model, the Ewald-sphere prediction (`prediction`) and the
pixel position. The residuals are explained (`diagnosis`) by rigid detector moves and the
wavelength (`rigid`). `flipcheck` tells which flip of an image a geometry fits (`q-check`
and `convert-poni --image`). It imports `geocal_cli.core.rings` because powder residuals and
flip ratings are measured on the calibration's own control points (`rings.controlpoints`):
a check with another peak finder would measure the finder, not the geometry.
"""
