"""Call events posted to the CRM (docs/crm/call-events.md).

`events` builds an event from what the softphone reported and what the gateway knows,
`signing` signs it, `delivery` queues and posts it (framework-free, with retries), and `views`
is the route the softphone page reports to.
"""
