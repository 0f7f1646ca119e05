"""``synchub bench``: the scenarios of docs/benchmarks.md, each beside its baseline.

One module a scenario (ingest, peers, latency, handshakes, resync), with the rig
that builds hubs and clients for them, the swarm that drives many protocol
clients from one thread, and the report that prints each figure.
"""

__all__ = [
    "fleet",
    "handshakes",
    "ingest",
    "latency",
    "peers",
    "relay",
    "report",
    "resync",
    "rig",
    "swarm",
    "worker",
]
