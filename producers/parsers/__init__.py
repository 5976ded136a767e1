"""Parsers of source formats (email, phone, meetings) into canonical InteractionEvents.

Every parser yields ``Parsed`` or ``Rejected`` records (see ``producers.parsers.base``) and never
raises on one bad record: a rejected record carries its reason and original bytes for the DLQ.
"""
