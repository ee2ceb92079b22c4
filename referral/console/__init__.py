"""The counsellor console: take a case, talk to the person, refer them, close."""


def __getattr__(name: str):
    # `uvicorn referral.console:app` builds the app on first use, not on import,
    # so tests and the CLI can import the package without reading settings.
    if name == "app":
        from referral.console.main import create_app

        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
