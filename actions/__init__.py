"""The action server: thin rasa-sdk actions over plain, tested functions.

`python -m rasa_sdk --actions actions` imports this package; every module that
defines an action is imported here so the SDK registers it.
"""

from actions import handoff, services, turn  # noqa: F401
