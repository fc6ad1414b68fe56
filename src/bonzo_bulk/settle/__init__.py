"""Settle: poll Bonzo's API until every record is visible, or the deadline passes."""
