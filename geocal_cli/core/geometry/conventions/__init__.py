"""Other programs' detector-geometry conventions as `DetectorFrame`s, and back.

Every convention here is a map from pixel indices (d1 = row, d2 = column, centre of pixel i
at index i) to positions in the program's own laboratory frame. Each module states that map
(from the program's source), the fixed rotation between the program's laboratory axes and
pyFAI's (x1 vertical, x3 along the beam), and the exact inverse: the program's parameters
for any `DetectorFrame`. Converting between two programs is then frame → frame, and
`frame.params_from_frame` turns a frame into PONI parameters.

Lengths in frames are metres; each module documents its own units.
"""
