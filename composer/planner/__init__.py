"""The planner: observe, reconcile, plan, execute."""
