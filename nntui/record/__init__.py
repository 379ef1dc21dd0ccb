"""The record layer (torch-free, UI-free): typed events, the run directory's log, and the RunState they build."""
