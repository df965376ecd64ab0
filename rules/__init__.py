"""Decisions per prediction and owner: the YAML rule set (``loader``), pure decisions
(``decide``, ``sla``), carrying them out in one transaction (``flows``) and the loop that
follows predictions and the clock (``responder``)."""
