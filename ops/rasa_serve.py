"""Start `rasa run` with its API token taken from the environment, never from the command line.

`rasa run` accepts its token only as `--auth-token`, and any local user can read a process's
command line (`ps`, /proc/<pid>/cmdline), while its environment is its owner's alone. This
adds the option inside the process, to the argv Rasa parses, and then runs Rasa's own CLI.
It refuses to start Rasa's API without a token. Runs under .venv-rasa's Python, so it
imports nothing from the project:

    .venv-rasa/bin/python ops/rasa_serve.py run --enable-api ...
"""

import os
import sys


def main() -> None:
    token = os.environ.pop("RASA_TOKEN", "").strip()
    if not token:
        raise SystemExit("refusing to start Rasa's API with no RASA_TOKEN in the environment")
    sys.argv = ["rasa", *sys.argv[1:], "--auth-token", token]
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
