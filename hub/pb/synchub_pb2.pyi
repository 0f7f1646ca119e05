from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OperationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNKNOWN: _ClassVar[OperationStatus]
    STATUS_PENDING: _ClassVar[OperationStatus]
    STATUS_INPROGRESS: _ClassVar[OperationStatus]
    STATUS_SUCCESS: _ClassVar[OperationStatus]
    STATUS_ERROR: _ClassVar[OperationStatus]
    STATUS_SYSTEM_CANCELLED: _ClassVar[OperationStatus]
    STATUS_USER_CANCELLED: _ClassVar[OperationStatus]
    STATUS_WARNING: _ClassVar[OperationStatus]

class ConnectionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONNECTION_STATE_UNKNOWN: _ClassVar[ConnectionState]
    CONNECTION_STATE_PENDING: _ClassVar[ConnectionState]
    CONNECTION_STATE_CONNECTED: _ClassVar[ConnectionState]
    CONNECTION_STATE_DISCONNECTED: _ClassVar[ConnectionState]
    CONNECTION_STATE_RETRY_WAIT: _ClassVar[ConnectionState]
    CONNECTION_STATE_ERROR_AUTH: _ClassVar[ConnectionState]
    CONNECTION_STATE_ERROR_PROTOCOL: _ClassVar[ConnectionState]
    CONNECTION_STATE_ERROR_INTERNAL: _ClassVar[ConnectionState]
STATUS_UNKNOWN: OperationStatus
STATUS_PENDING: OperationStatus
STATUS_INPROGRESS: OperationStatus
STATUS_SUCCESS: OperationStatus
STATUS_ERROR: OperationStatus
STATUS_SYSTEM_CANCELLED: OperationStatus
STATUS_USER_CANCELLED: OperationStatus
STATUS_WARNING: OperationStatus
CONNECTION_STATE_UNKNOWN: ConnectionState
CONNECTION_STATE_PENDING: ConnectionState
CONNECTION_STATE_CONNECTED: ConnectionState
CONNECTION_STATE_DISCONNECTED: ConnectionState
CONNECTION_STATE_RETRY_WAIT: ConnectionState
CONNECTION_STATE_ERROR_AUTH: ConnectionState
CONNECTION_STATE_ERROR_PROTOCOL: ConnectionState
CONNECTION_STATE_ERROR_INTERNAL: ConnectionState

class Operation(_message.Message):
    __slots__ = ("id", "repo_id", "plan_id", "status", "unix_time_start_ms", "unix_time_end_ms", "display_message", "snapshot_id", "logref", "flow_id", "instance_id", "modno", "original_id", "original_flow_id", "repo_guid", "original_instance_keyid", "operation_run_command")
    ID_FIELD_NUMBER: _ClassVar[int]
    REPO_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UNIX_TIME_START_MS_FIELD_NUMBER: _ClassVar[int]
    UNIX_TIME_END_MS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    LOGREF_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    MODNO_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    REPO_GUID_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_INSTANCE_KEYID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_RUN_COMMAND_FIELD_NUMBER: _ClassVar[int]
    id: int
    repo_id: str
    plan_id: str
    status: OperationStatus
    unix_time_start_ms: int
    unix_time_end_ms: int
    display_message: str
    snapshot_id: str
    logref: str
    flow_id: int
    instance_id: str
    modno: int
    original_id: int
    original_flow_id: int
    repo_guid: str
    original_instance_keyid: str
    operation_run_command: OperationRunCommand
    def __init__(self, id: _Optional[int] = ..., repo_id: _Optional[str] = ..., plan_id: _Optional[str] = ..., status: _Optional[_Union[OperationStatus, str]] = ..., unix_time_start_ms: _Optional[int] = ..., unix_time_end_ms: _Optional[int] = ..., display_message: _Optional[str] = ..., snapshot_id: _Optional[str] = ..., logref: _Optional[str] = ..., flow_id: _Optional[int] = ..., instance_id: _Optional[str] = ..., modno: _Optional[int] = ..., original_id: _Optional[int] = ..., original_flow_id: _Optional[int] = ..., repo_guid: _Optional[str] = ..., original_instance_keyid: _Optional[str] = ..., operation_run_command: _Optional[_Union[OperationRunCommand, _Mapping]] = ...) -> None: ...

class OperationRunCommand(_message.Message):
    __slots__ = ("command", "output_logref", "output_size_bytes", "exit_code")
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_LOGREF_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    command: str
    output_logref: str
    output_size_bytes: int
    exit_code: int
    def __init__(self, command: _Optional[str] = ..., output_logref: _Optional[str] = ..., output_size_bytes: _Optional[int] = ..., exit_code: _Optional[int] = ...) -> None: ...

class PublicKey(_message.Message):
    __slots__ = ("keyid", "ed25519pub")
    KEYID_FIELD_NUMBER: _ClassVar[int]
    ED25519PUB_FIELD_NUMBER: _ClassVar[int]
    keyid: str
    ed25519pub: str
    def __init__(self, keyid: _Optional[str] = ..., ed25519pub: _Optional[str] = ...) -> None: ...

class OperationList(_message.Message):
    __slots__ = ("operations",)
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    operations: _containers.RepeatedCompositeFieldContainer[Operation]
    def __init__(self, operations: _Optional[_Iterable[_Union[Operation, _Mapping]]] = ...) -> None: ...

class Int64List(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, values: _Optional[_Iterable[int]] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class OperationEvent(_message.Message):
    __slots__ = ("keep_alive", "created_operations", "updated_operations", "deleted_operations")
    KEEP_ALIVE_FIELD_NUMBER: _ClassVar[int]
    CREATED_OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    DELETED_OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    keep_alive: Empty
    created_operations: OperationList
    updated_operations: OperationList
    deleted_operations: Int64List
    def __init__(self, keep_alive: _Optional[_Union[Empty, _Mapping]] = ..., created_operations: _Optional[_Union[OperationList, _Mapping]] = ..., updated_operations: _Optional[_Union[OperationList, _Mapping]] = ..., deleted_operations: _Optional[_Union[Int64List, _Mapping]] = ...) -> None: ...

class OpSelector(_message.Message):
    __slots__ = ("ids", "plan_id", "snapshot_id", "flow_id", "instance_id", "repo_guid", "original_instance_keyid")
    IDS_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    REPO_GUID_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_INSTANCE_KEYID_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[int]
    plan_id: str
    snapshot_id: str
    flow_id: int
    instance_id: str
    repo_guid: str
    original_instance_keyid: str
    def __init__(self, ids: _Optional[_Iterable[int]] = ..., plan_id: _Optional[str] = ..., snapshot_id: _Optional[str] = ..., flow_id: _Optional[int] = ..., instance_id: _Optional[str] = ..., repo_guid: _Optional[str] = ..., original_instance_keyid: _Optional[str] = ...) -> None: ...

class Repo(_message.Message):
    __slots__ = ("id", "uri", "guid")
    ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    GUID_FIELD_NUMBER: _ClassVar[int]
    id: str
    uri: str
    guid: str
    def __init__(self, id: _Optional[str] = ..., uri: _Optional[str] = ..., guid: _Optional[str] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("id", "repo", "paths", "excludes")
    ID_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDES_FIELD_NUMBER: _ClassVar[int]
    id: str
    repo: str
    paths: _containers.RepeatedScalarFieldContainer[str]
    excludes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., repo: _Optional[str] = ..., paths: _Optional[_Iterable[str]] = ..., excludes: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoteConfig(_message.Message):
    __slots__ = ("modno", "version", "repos", "plans")
    MODNO_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REPOS_FIELD_NUMBER: _ClassVar[int]
    PLANS_FIELD_NUMBER: _ClassVar[int]
    modno: int
    version: int
    repos: _containers.RepeatedCompositeFieldContainer[Repo]
    plans: _containers.RepeatedCompositeFieldContainer[Plan]
    def __init__(self, modno: _Optional[int] = ..., version: _Optional[int] = ..., repos: _Optional[_Iterable[_Union[Repo, _Mapping]]] = ..., plans: _Optional[_Iterable[_Union[Plan, _Mapping]]] = ...) -> None: ...

class PeerState(_message.Message):
    __slots__ = ("peer_instance_id", "peer_keyid", "state", "status_message", "known_plans", "known_repos", "remote_config", "last_heartbeat_millis")
    PEER_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_KEYID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    KNOWN_PLANS_FIELD_NUMBER: _ClassVar[int]
    KNOWN_REPOS_FIELD_NUMBER: _ClassVar[int]
    REMOTE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_MILLIS_FIELD_NUMBER: _ClassVar[int]
    peer_instance_id: str
    peer_keyid: str
    state: ConnectionState
    status_message: str
    known_plans: _containers.RepeatedScalarFieldContainer[str]
    known_repos: _containers.RepeatedScalarFieldContainer[str]
    remote_config: RemoteConfig
    last_heartbeat_millis: int
    def __init__(self, peer_instance_id: _Optional[str] = ..., peer_keyid: _Optional[str] = ..., state: _Optional[_Union[ConnectionState, str]] = ..., status_message: _Optional[str] = ..., known_plans: _Optional[_Iterable[str]] = ..., known_repos: _Optional[_Iterable[str]] = ..., remote_config: _Optional[_Union[RemoteConfig, _Mapping]] = ..., last_heartbeat_millis: _Optional[int] = ...) -> None: ...

class SyncStreamItem(_message.Message):
    __slots__ = ("handshake", "heartbeat", "diff_operations", "send_operations", "send_config", "set_config", "list_resources", "error", "throttle")
    class Handshake(_message.Message):
        __slots__ = ("protocol_version", "public_key", "instance_id", "nonce", "signature")
        PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
        PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
        INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
        NONCE_FIELD_NUMBER: _ClassVar[int]
        SIGNATURE_FIELD_NUMBER: _ClassVar[int]
        protocol_version: int
        public_key: PublicKey
        instance_id: str
        nonce: bytes
        signature: bytes
        def __init__(self, protocol_version: _Optional[int] = ..., public_key: _Optional[_Union[PublicKey, _Mapping]] = ..., instance_id: _Optional[str] = ..., nonce: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...
    class Heartbeat(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class DiffOperations(_message.Message):
        __slots__ = ("have_operations_selector", "have_operation_ids", "have_operation_modnos", "request_operations")
        HAVE_OPERATIONS_SELECTOR_FIELD_NUMBER: _ClassVar[int]
        HAVE_OPERATION_IDS_FIELD_NUMBER: _ClassVar[int]
        HAVE_OPERATION_MODNOS_FIELD_NUMBER: _ClassVar[int]
        REQUEST_OPERATIONS_FIELD_NUMBER: _ClassVar[int]
        have_operations_selector: OpSelector
        have_operation_ids: _containers.RepeatedScalarFieldContainer[int]
        have_operation_modnos: _containers.RepeatedScalarFieldContainer[int]
        request_operations: _containers.RepeatedScalarFieldContainer[int]
        def __init__(self, have_operations_selector: _Optional[_Union[OpSelector, _Mapping]] = ..., have_operation_ids: _Optional[_Iterable[int]] = ..., have_operation_modnos: _Optional[_Iterable[int]] = ..., request_operations: _Optional[_Iterable[int]] = ...) -> None: ...
    class SendOperations(_message.Message):
        __slots__ = ("event",)
        EVENT_FIELD_NUMBER: _ClassVar[int]
        event: OperationEvent
        def __init__(self, event: _Optional[_Union[OperationEvent, _Mapping]] = ...) -> None: ...
    class SendConfig(_message.Message):
        __slots__ = ("config",)
        CONFIG_FIELD_NUMBER: _ClassVar[int]
        config: RemoteConfig
        def __init__(self, config: _Optional[_Union[RemoteConfig, _Mapping]] = ...) -> None: ...
    class SetConfig(_message.Message):
        __slots__ = ("repos", "plans", "repos_to_delete", "plans_to_delete")
        REPOS_FIELD_NUMBER: _ClassVar[int]
        PLANS_FIELD_NUMBER: _ClassVar[int]
        REPOS_TO_DELETE_FIELD_NUMBER: _ClassVar[int]
        PLANS_TO_DELETE_FIELD_NUMBER: _ClassVar[int]
        repos: _containers.RepeatedCompositeFieldContainer[Repo]
        plans: _containers.RepeatedCompositeFieldContainer[Plan]
        repos_to_delete: _containers.RepeatedScalarFieldContainer[str]
        plans_to_delete: _containers.RepeatedScalarFieldContainer[str]
        def __init__(self, repos: _Optional[_Iterable[_Union[Repo, _Mapping]]] = ..., plans: _Optional[_Iterable[_Union[Plan, _Mapping]]] = ..., repos_to_delete: _Optional[_Iterable[str]] = ..., plans_to_delete: _Optional[_Iterable[str]] = ...) -> None: ...
    class ListResources(_message.Message):
        __slots__ = ("repo_ids", "plan_ids")
        REPO_IDS_FIELD_NUMBER: _ClassVar[int]
        PLAN_IDS_FIELD_NUMBER: _ClassVar[int]
        repo_ids: _containers.RepeatedScalarFieldContainer[str]
        plan_ids: _containers.RepeatedScalarFieldContainer[str]
        def __init__(self, repo_ids: _Optional[_Iterable[str]] = ..., plan_ids: _Optional[_Iterable[str]] = ...) -> None: ...
    class Error(_message.Message):
        __slots__ = ("state", "message")
        STATE_FIELD_NUMBER: _ClassVar[int]
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        state: ConnectionState
        message: str
        def __init__(self, state: _Optional[_Union[ConnectionState, str]] = ..., message: _Optional[str] = ...) -> None: ...
    class Throttle(_message.Message):
        __slots__ = ("delay_ms",)
        DELAY_MS_FIELD_NUMBER: _ClassVar[int]
        delay_ms: int
        def __init__(self, delay_ms: _Optional[int] = ...) -> None: ...
    HANDSHAKE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    DIFF_OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    SEND_OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    SEND_CONFIG_FIELD_NUMBER: _ClassVar[int]
    SET_CONFIG_FIELD_NUMBER: _ClassVar[int]
    LIST_RESOURCES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    THROTTLE_FIELD_NUMBER: _ClassVar[int]
    handshake: SyncStreamItem.Handshake
    heartbeat: SyncStreamItem.Heartbeat
    diff_operations: SyncStreamItem.DiffOperations
    send_operations: SyncStreamItem.SendOperations
    send_config: SyncStreamItem.SendConfig
    set_config: SyncStreamItem.SetConfig
    list_resources: SyncStreamItem.ListResources
    error: SyncStreamItem.Error
    throttle: SyncStreamItem.Throttle
    def __init__(self, handshake: _Optional[_Union[SyncStreamItem.Handshake, _Mapping]] = ..., heartbeat: _Optional[_Union[SyncStreamItem.Heartbeat, _Mapping]] = ..., diff_operations: _Optional[_Union[SyncStreamItem.DiffOperations, _Mapping]] = ..., send_operations: _Optional[_Union[SyncStreamItem.SendOperations, _Mapping]] = ..., send_config: _Optional[_Union[SyncStreamItem.SendConfig, _Mapping]] = ..., set_config: _Optional[_Union[SyncStreamItem.SetConfig, _Mapping]] = ..., list_resources: _Optional[_Union[SyncStreamItem.ListResources, _Mapping]] = ..., error: _Optional[_Union[SyncStreamItem.Error, _Mapping]] = ..., throttle: _Optional[_Union[SyncStreamItem.Throttle, _Mapping]] = ...) -> None: ...
