"""The Forewarn API, for support staff and integrations.

Every route under `/api/v1` needs an API key in the `X-API-Key` header (make one with
`forewarn keys create --name NAME --role ROLE`). A key's role limits what it may do:
**viewer** reads; **agent** also works tickets and edits guides; **integration** reads and
works tickets; **admin** does everything, including keys and rule sets. A missing, unknown
or revoked key gets 401; a role that may not do something gets 403. Two routes take no key:
`POST /api/v1/inbound/{channel}` (owners' replies, signed by a relay in the Standard Webhooks
scheme) and the owner's survey page under `/survey/{token}` (a signed link).

Errors are JSON: `{"detail": "what went wrong"}` (422 validation errors list each field).
Times are ISO 8601 in UTC and are business time: the wall clock in production, the
simulation's clock while `forewarn demo` runs. The console is served at `/console/`.
"""
