"""What a calibrant's rings look like: kinematic structure factors and ring intensities.

`structure` computes |F(hkl)|² from atoms (X-ray or electron scattering factors) and powder
ring intensities with multiplicities, for calibrants from a CIF (`calib-ring`, `recenter`,
`simulate` through `io.calibrants`). It imports nothing else from core.
"""
