"""Shinrai application shell: command line, settings, exception tree and logging.

The domain lives elsewhere: ``schemas`` (canonical models), ``engine`` (the pure SLA core),
``streams`` (Faust app), ``sinks`` (ClickHouse and alert hooks).
"""

__version__ = "0.1.0"
