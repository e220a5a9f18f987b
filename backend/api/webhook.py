"""Payment providers notifying the server directly."""
