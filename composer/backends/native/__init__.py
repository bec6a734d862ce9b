"""The native backend: composer's own daemonless runtime (images first; containers and networks follow)."""
