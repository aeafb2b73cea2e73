"""A plugin whose import fails (tests/test_reliability.py): the CLI must say so in one line."""

raise RuntimeError("this plugin is broken on purpose")
