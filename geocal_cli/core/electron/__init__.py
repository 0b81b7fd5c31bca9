"""Electron diffraction: the microscope's model of a ring pattern (`lens`: camera length,
projector-lens ellipticity, centre) and its statement in the terms microscopists and their
programs use (`conventions`)."""
