"""kit: utilities shared by both engines (seeding, timing, configuration, GPU monitoring)."""
