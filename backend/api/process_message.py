"""POST /api/v1/messages: a question answered by the chosen model."""
