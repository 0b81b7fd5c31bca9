"""A series of calibrations taken as a whole, the engine of the trends `batch` reports: each
parameter (beam centre, distance, tilt, residual) against acquisition order, and the jumps
that neither the series' own drift and scatter nor the items' 1σ explain (`jumps`), as a
beamline scientist reads a night of recalibrations. It imports nothing else of the core.
"""
