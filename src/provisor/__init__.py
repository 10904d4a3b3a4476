"""provisor: a phone auto-provisioning server with a wazo-provd compatible REST API."""

__all__ = ["__version__"]

__version__ = "0.1.0"
