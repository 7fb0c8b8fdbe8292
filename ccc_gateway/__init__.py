"""ccc-gateway: an HTTPS sidecar that puts Alibaba Cloud Call Center into any web CRM."""

__version__ = "0.1.0"
