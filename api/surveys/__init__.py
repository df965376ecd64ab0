"""The public survey page an owner reaches from the resolved notice: no key, a signed link."""
