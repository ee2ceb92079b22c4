"""Dev only: a stand-in for Twilio's servers and a phone page. Never started in production."""
