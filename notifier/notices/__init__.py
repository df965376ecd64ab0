"""What Forewarn tells an owner about their ticket: templates kept with the guides
(guides/notices/), rendered in the owner's language and queued to their channels."""
