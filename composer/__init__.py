"""composer: a Compose-first multi-container orchestrator."""
