"""TFTP pieces of the wazo plugin API."""
