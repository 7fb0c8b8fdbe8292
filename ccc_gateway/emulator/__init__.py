"""Alibaba Cloud emulator (OAuth/OIDC and CCC OpenAPI) for the demo and tests."""
