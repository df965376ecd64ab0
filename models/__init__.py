"""Fault prediction: features, models behind a learn/score interface, training, scoring."""
