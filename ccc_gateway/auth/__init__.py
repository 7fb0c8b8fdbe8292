"""Alibaba sign-in: the views (start, callback, refresh, revoke), login state, return_to."""
