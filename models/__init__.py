"""Fault prediction (scikit-learn behind a learn/score interface). Not built yet: issue 3."""
