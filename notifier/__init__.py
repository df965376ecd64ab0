"""What Forewarn sends: the notification outbox and its dispatcher (Apprise, the webhook
ticket sink), the knowledge base of guides (``notifier.guides``) and tickets with their SLA
clocks (``notifier.tickets``)."""
