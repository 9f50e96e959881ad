"""The infrastructure of every request: security headers and input guards."""
