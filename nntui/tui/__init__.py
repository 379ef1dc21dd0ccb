"""The Textual dashboard: renders a RunState fed live by a Run or by a run log (watch/replay).

Nothing here imports torch; panels read plain numbers copied out of the RunState.
"""
