"""provisor.sync."""
