"""Subscription billing (정기결제): schedules, the charge step, dunning, and their storage."""
