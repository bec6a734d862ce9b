"""The swarm backend: a project deployed as a stack of services on a Docker Swarm (docs/swarm.md)."""
