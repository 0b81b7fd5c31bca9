"""Blind calibration from one calibrant ring image, the engine of `calib-ring`.

Ridges (`ridges`) vote for a ring centre and are grouped into ring traces (`blind`, with
`ellipse` fits), or, on strongly tilted detectors, fitted as a family of conic arcs
(`family`); the traces are assigned to calibrant reflections (`assign`) to give a starting
geometry (`start`); control points sampled along 2θ at fixed χ (`controlpoints`) and
least-squares refinement with 1σ (`refine`) alternate in rounds that add rings and reject
foreign ones (`rounds`); `calibrate` runs it all and refuses what the data cannot decide.
It imports only `geometry`.
"""
