"""Patients as they reach the clinic: the manage link that opens one visit."""
