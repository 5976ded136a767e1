"""The pure SLA engine: state + event in, new state + facts out.

No Kafka, Faust, ClickHouse, network, or wall-clock access lives here (a test enforces it), so the
same engine runs in the Faust workers, in file replays and in property tests, with identical facts.
"""
