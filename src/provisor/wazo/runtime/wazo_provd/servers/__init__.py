"""Server-related pieces of the wazo plugin API (only what plugins construct)."""
