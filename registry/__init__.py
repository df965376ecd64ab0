"""The registry of a real fleet: its owners and devices, the devices' states, and the broker
credentials Forewarn keeps for them. Owns ``owners``, the registration columns of ``devices``
and ``broker_credentials``."""
