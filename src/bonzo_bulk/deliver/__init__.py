"""Deliver: the webhook sender, its probe and its watch."""
