"""Detector distortion from a hole-grid image, the engine of `grid-distortion`.

Spot size and lattice from the image's autocorrelation and sub-pixel spot centres (`spots`),
lattice indices grown from the least-distorted region (`lattice`), the ideal grid and the
thin-plate smoothing spline of the displacement (`fit`), and the whole measurement with
outlier rejection and the field masked outside the holes' hull (`measure`). The field is a
`geometry.displacement.Field` in pyFAI's convention. It imports only `geometry`.
"""
