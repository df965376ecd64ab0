"""Owners' replies that relays post to Forewarn: who sent them, and which conversation (ticket
or incident) they answer. ``rules.replies`` decides what each one does."""
