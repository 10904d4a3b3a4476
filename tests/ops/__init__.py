"""Operating provisor: packaging, the systemd unit, install routes."""
