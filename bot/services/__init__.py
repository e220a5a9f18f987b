"""Collaborators of the handlers: the backend client."""
