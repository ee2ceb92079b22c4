"""The action server: thin rasa-sdk actions over plain, tested functions.

`python -m actions.server` (rasa-sdk behind a token) imports this package; every module that
defines an action is imported here so the SDK registers it.
"""

from actions import handoff, services, turn  # noqa: F401
