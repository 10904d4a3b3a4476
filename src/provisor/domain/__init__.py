"""provisor.domain."""
