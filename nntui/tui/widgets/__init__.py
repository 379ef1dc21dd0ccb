"""Dashboard panels; each redraws itself from a Snapshot and the ViewOptions."""
