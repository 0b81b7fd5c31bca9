"""Pure numerics of geocal: arrays and plain keyword arguments in, dataclasses out.

No file I/O, no CLI, no config parsing: nothing here imports typer, rich, pydantic, yaml,
fabio or h5py. One sub-package per capability, over one shared ground:

- `geometry`: detector frames, PONI ⇄ frame, units, flips, displacement fields, ring-position
  metrics and the other programs' conventions; every capability may import it.
- `rings`: blind calibration from calibrant rings (`calib-ring`).
- `center`: beam centre from rings, the direct beam or Friedel pairs (`recenter`).
- `grid`: detector distortion from a hole-grid image (`grid-distortion`).
- `q`: q consistency of powder control points and DIALS stills (`q-check`), flip rating.
- `simulate`: forward models of ring, spot and grid images (`simulate`, `demo`, tests).
- `calibrant`: kinematic structure factors and powder ring intensities of calibrants.

A capability imports only `geometry` (and `geocal_cli.errors`), unless the opening paragraph
of its `__init__` names the other capability as ``geocal_cli.core.<name>`` and says why;
`tests/test_layering.py` holds the code to that.
"""
