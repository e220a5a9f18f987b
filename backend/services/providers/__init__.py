"""One adapter per provider API style, all yielding the same stream of events."""
