"""Notifications to patients: outbox rows (outbox), emails (messages), sending them (dispatcher)."""
