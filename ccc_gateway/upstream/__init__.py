"""The HTTP/1.1 connection pool to the CRM."""
