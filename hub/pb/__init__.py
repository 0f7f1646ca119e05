"""Generated protobuf modules for the ``synchub.v1`` schema (see proto/).

Import as ``from hub.pb import synchub_pb2 as pb``.
"""
