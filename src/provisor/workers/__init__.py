"""Phone worker processes: the phone listeners served on every core (docs/architecture.md)."""
