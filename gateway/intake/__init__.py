"""Intake: what a caller or texter sends, read into reports and answers (USSD, SMS, delivery reports)."""
