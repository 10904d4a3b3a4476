"""provisor.plugins."""
