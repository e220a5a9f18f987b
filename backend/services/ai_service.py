"""Answers from the AI providers behind one interface."""
