"""Prometheus metrics, one registry per application (so tests can build many apps).

No label carries a user or a course: cardinality stays bounded by the number of
event names, routes and error kinds.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["LATENCY_BUCKETS", "Metrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge(
            "attendance_socket_connections", "Socket.IO connections open on this node", registry=r
        )
        self.subscriptions = Gauge(
            "attendance_course_subscriptions", "Course subscriptions held on this node", registry=r
        )
        self.overflows = Counter(
            "attendance_socket_overflows",
            "Connections closed because their outgoing buffer overflowed (the client stopped reading)",
            registry=r,
        )
        self.emits = Counter(
            "attendance_emits",
            "Events broadcast by the relay to a room with members on this node",
            ["event"],
            registry=r,
        )
        self.deliveries = Counter(
            "attendance_deliveries",
            "Events sent to sockets on this node, counted per recipient",
            ["event"],
            registry=r,
        )
        self.handler_seconds = Histogram(
            "attendance_socket_handler_seconds",
            "Time to handle a client event",
            ["event"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.http_seconds = Histogram(
            "attendance_http_request_seconds",
            "Time to answer an HTTP request",
            ["method", "route", "status_class"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.db_seconds = Histogram(
            "attendance_db_transaction_seconds",
            "Time of one database transaction, waiting for a connection included",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "attendance_errors",
            "Errors by kind (socket error codes, HTTP statuses, database outages)",
            ["kind"],
            registry=r,
        )
        self.redis_up = Gauge(
            "attendance_redis_up",
            "1 when Redis answers, 0 when it does not, -1 when not configured",
            registry=r,
        )
        self.redis_up.set(-1)
        # Leak watch (bench/soak.py): tasks of the event loop and deadlines our timers hold.
        self.tasks = Gauge("attendance_asyncio_tasks", "asyncio tasks of this node's event loop", registry=r)
        self.timer_entries = Gauge(
            "attendance_timer_entries",
            "Live deadlines of this node's timers (heartbeats, handshakes, token expiries)",
            registry=r,
        )
        self.timer_heap_entries = Gauge(
            "attendance_timer_heap_entries",
            "Entries of this node's timer queues and heap, cancelled ones not yet dropped included",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
