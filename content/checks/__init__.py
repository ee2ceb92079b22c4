"""The content checks, one module per family; each has `check(content)` adding to its problems.

`content.check` runs them in order; every finding names the file and line to edit.
"""
