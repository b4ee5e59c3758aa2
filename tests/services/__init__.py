"""Real services on loopback (HTTP API, S3) that tests start and stop."""
