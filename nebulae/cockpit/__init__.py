"""cockpit: devices (Engine), checkpoints (TimeMachine) and data parallelism (Multiverse)."""
