"""Protection domain: the risk screen and the service directory.

Plain Python that the action server, triage, evaluation and the console all import; it
imports only the shared core, never the action server.
"""
