"""`python -m nntui`: the same start as the `nntui` command (nntui/entry.py)."""

from nntui.entry import main

main()
