"""POST /api/v1/inbound/{channel}: owners' replies, posted and signed by a relay."""
