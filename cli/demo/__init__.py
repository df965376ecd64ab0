"""``forewarn demo`` and ``forewarn simulate``: embedded services, a simulated fleet, the whole
pipeline and the staff console together, with live progress and a summary."""
