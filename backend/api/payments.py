"""Invoices, pre-checkout and payments."""
