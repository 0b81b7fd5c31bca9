"""geocal: blind geometry calibration of area detectors for X-ray and electron diffraction."""

__version__ = "0.1.0"
