"""The gateway's HTTP edge: middleware, errors and their answers, pages, routing, origin checks."""
