"""provisor.dhcp."""
