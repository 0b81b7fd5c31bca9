"""Forward models with a known truth, for `simulate`, `demo` and the tests.

`patterns`: calibrant ring images (powder intensities, Lorentz factor, texture, background,
beamstop, gaps, noise, hot pixels, lens ellipticity) and zone-axis single-crystal spot
patterns; `grid`: hole-grid images seen through a known detector displacement field. They
are the truth every other capability is tested against, so they import only `geometry`.
"""
