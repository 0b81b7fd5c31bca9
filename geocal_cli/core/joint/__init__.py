"""Joint calibration of many images that share one detector.

Each image's PONI parameters (and wavelength) follow a motion model: expressions of shared
parameters and the image's known position (`model`), in the form of pyFAI's goniometer
transformations. One least-squares problem over the control points of all images fits the
shared parameters (`fit`).

Reuses `geocal_cli.core.rings`: control-point sampling, the rounds' ring bookkeeping, and the refinement's
2θ Jacobian and covariance.
"""
