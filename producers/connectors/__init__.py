"""Live sources: connectors that follow a team's mailboxes (IMAP) and calendars (CalDAV).

``shinrai connect --config connect.yaml`` runs the connectors described in one YAML file
(``config.py``). Each connector turns what it reads into events with the same parsers and ids as
the file importers (a message's event id comes from its Message-ID), so importing an archive and
following the live mailbox never count a message twice. Checkpoints live in ``checkpoints.py``.
"""
