"""provisor.api."""
