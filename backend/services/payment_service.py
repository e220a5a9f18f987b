"""Payments and invoices (Telegram Stars and provider rails)."""
