"""provisor.provisioning."""
