"""Device-related pieces of the wazo plugin API."""
