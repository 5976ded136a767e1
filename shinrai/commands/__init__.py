"""One module per ``shinrai`` subcommand; each exposes ``command`` (click command or group)."""
