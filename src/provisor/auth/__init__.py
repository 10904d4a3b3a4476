"""provisor.auth."""
