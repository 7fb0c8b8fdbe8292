"""The softphone page and the widget injected into the CRM's HTML pages."""
