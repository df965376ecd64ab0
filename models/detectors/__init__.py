"""Label-free detectors: one per fault, each learning one device's own history as it goes.

They need no training run and no labels, so they work from a device's first day. Each keeps a
few float64 numbers per device (no window of readings), packed in one array a fleet
(``packed``), and follows river's interface: ``score_one``
judges a reading against what was learned so far without changing anything, ``learn_one``
then folds it in. See ``models.detect`` for how the scorer and the backtest drive them.
"""
