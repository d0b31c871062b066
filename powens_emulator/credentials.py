"""The demo client credentials the emulator accepts by default: a module of their own, so the
command line can show them without importing the server."""

DEMO_CLIENT_ID = "pfo-demo-client"
DEMO_CLIENT_SECRET = "pfo-demo-secret"
