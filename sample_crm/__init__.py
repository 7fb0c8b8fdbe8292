"""A minimal sample CRM: login, customers, SQLite."""
