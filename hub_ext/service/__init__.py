"""The pool and quota service (docs/service.md).

``app`` wires the parts and serves; ``store`` persists (ORM + Alembic);
``api`` answers HTTP, one module per resource; ``auth`` says who may do what;
``snapshot`` -> scheduler core -> ``apply`` is one cycle, run by ``loop``;
``jobs`` and ``runners`` make processes follow the allocations;
``workloads`` and ``teams`` hold the rules behind the handlers; ``inventory``
knows the GPUs; ``views`` shapes the answers; ``metrics`` exports Prometheus.
"""
