"""The pure SLA engine: state + event in, new state + facts out.

No Kafka, Faust, ClickHouse, network, or wall-clock access lives here (a test enforces it), so the
same engine runs in the Faust workers, in file replays and in property tests, with identical facts.

Modules: ``core`` (Engine: apply / advance / settle / next_due), ``state`` (per-client state,
orjson bytes), ``classify`` (what an event opens, answers, touches), ``trust`` (the ladder),
``alerts`` (fact -> alert), ``replay`` (sorted log -> facts; JSONL reader), ``ids`` (stable ids),
``factmake`` (fast Fact construction), ``calendar`` and ``deadlines`` (business-time arithmetic).
"""
