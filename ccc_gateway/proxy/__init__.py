"""The reverse proxy to the CRM: request/response header rules, bodies, websockets."""
