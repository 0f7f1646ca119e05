"""synchub: a self-hosted sync hub for operation logs.

The packages, from the foundations up: ``errors``, ``identity``, ``scopes``,
``config``, ``store``, ``protocol``; then ``server`` (the hub process),
``admin`` (its local admin socket) and ``agent`` (the client); ``cli`` and
``bench`` on top. docs/architecture.md is the map.
"""

__all__: list[str] = []
