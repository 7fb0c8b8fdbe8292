"""Sign-in sessions: the sealed token codec, cookie and Redis storage, refresh, CRM binding."""
