"""Reading and writing files: images, PONI, calibrants, reports, plots."""
