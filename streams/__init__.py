"""Faust app, agents, topics and timers: the thin streaming adapter around the engine.

Nothing here starts or connects at import time; the app is built by ``streams.app.build_app``.
"""
