"""Adversarial tests: each boundary of THREAT_MODEL.md and the attack it refuses."""
