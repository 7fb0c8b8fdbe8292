"""Test oracles: reference implementations written from the specification (docs/), for tests
to check the product's faster code against. Nothing in ccc_gateway imports them."""
