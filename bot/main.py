"""The bot process: dispatcher, webhook server or long polling."""
