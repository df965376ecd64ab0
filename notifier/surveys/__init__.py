"""Satisfaction after each resolution: a signed survey link in the resolved notice, answered on
a public page or on the agent's call-back when nobody answers within the day."""
