"""The clinic: its clinic file (read, apply, export) and its reference data (the clinic row,
services, therapists), read by every other part."""
