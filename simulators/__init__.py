"""Seeded device fleets that stand in for real products, with faults injected on purpose.

Pure code (``catalog``, ``fleet``, ``engine``) decides what every device says and when;
``publisher`` speaks MQTT, ``repository`` writes the fleet and its ground truth to SQL, and
``flows`` ties them together for tests, demos and benchmarks.
"""
