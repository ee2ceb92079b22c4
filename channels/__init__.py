"""The Twilio channel: gateway, workers, sender, dead letters and the dev sandbox."""
