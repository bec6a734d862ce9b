"""Go's docker/go-units formats, as Docker and Compose v2 print them, for every backend and the CLI."""

from __future__ import annotations


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration ("2 seconds", "About a minute", "3 weeks"), which ``docker ps``'s
    CREATED and STATUS ("Up 2 hours", "Exited (0) 3 days ago") and v2 use."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)  # Go's math.Round: half away from zero (durations are >= 0)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"
