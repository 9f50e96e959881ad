"""Calendars in and out: the .ics of a visit and of the feeds, the feed tokens, and the
therapists' busy calendars kept elsewhere."""
