"""provisor.store."""
