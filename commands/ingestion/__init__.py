"""Ingestion: what a payment provider reports (Stripe's webhook events), recorded once and turned
into money movements, each applied once, in one transaction per event (docs/adr/0011).

- provider_events: the received event, kept as received, under an id derived from the provider's;
- provider_reports: what an event reports, as typed provider-neutral values (the Stripe adapter
  decodes Stripe's objects into them, docs/adr/0014);
- stripe_events: each Stripe event type handled as its movements;
- money_movements: the steps that move a provider's money into the ledger, keyed by its ids;
- group_commit: concurrent deliveries share one commit, each answered only after it.
"""
