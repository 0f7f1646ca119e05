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

class HookCondition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONDITION_UNKNOWN: _ClassVar[HookCondition]
    CONDITION_ANY_ERROR: _ClassVar[HookCondition]
    CONDITION_SNAPSHOT_START: _ClassVar[HookCondition]
    CONDITION_SNAPSHOT_END: _ClassVar[HookCondition]
    CONDITION_SNAPSHOT_ERROR: _ClassVar[HookCondition]
    CONDITION_SNAPSHOT_WARNING: _ClassVar[HookCondition]
    CONDITION_SNAPSHOT_SUCCESS: _ClassVar[HookCondition]
    CONDITION_SNAPSHOT_SKIPPED: _ClassVar[HookCondition]
    CONDITION_PRUNE_START: _ClassVar[HookCondition]
    CONDITION_PRUNE_ERROR: _ClassVar[HookCondition]
    CONDITION_PRUNE_SUCCESS: _ClassVar[HookCondition]
    CONDITION_CHECK_START: _ClassVar[HookCondition]
    CONDITION_CHECK_ERROR: _ClassVar[HookCondition]
    CONDITION_CHECK_SUCCESS: _ClassVar[HookCondition]
    CONDITION_FORGET_START: _ClassVar[HookCondition]
    CONDITION_FORGET_ERROR: _ClassVar[HookCondition]
    CONDITION_FORGET_SUCCESS: _ClassVar[HookCondition]

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

class LogStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_STATUS_OK: _ClassVar[LogStatus]
    LOG_STATUS_NOT_FOUND: _ClassVar[LogStatus]
    LOG_STATUS_NOT_AVAILABLE: _ClassVar[LogStatus]
    LOG_STATUS_DENIED: _ClassVar[LogStatus]
    LOG_STATUS_BUSY: _ClassVar[LogStatus]
    LOG_STATUS_BAD_REQUEST: _ClassVar[LogStatus]
STATUS_UNKNOWN: OperationStatus
STATUS_PENDING: OperationStatus
STATUS_INPROGRESS: OperationStatus
STATUS_SUCCESS: OperationStatus
STATUS_ERROR: OperationStatus
STATUS_SYSTEM_CANCELLED: OperationStatus
STATUS_USER_CANCELLED: OperationStatus
STATUS_WARNING: OperationStatus
CONDITION_UNKNOWN: HookCondition
CONDITION_ANY_ERROR: HookCondition
CONDITION_SNAPSHOT_START: HookCondition
CONDITION_SNAPSHOT_END: HookCondition
CONDITION_SNAPSHOT_ERROR: HookCondition
CONDITION_SNAPSHOT_WARNING: HookCondition
CONDITION_SNAPSHOT_SUCCESS: HookCondition
CONDITION_SNAPSHOT_SKIPPED: HookCondition
CONDITION_PRUNE_START: HookCondition
CONDITION_PRUNE_ERROR: HookCondition
CONDITION_PRUNE_SUCCESS: HookCondition
CONDITION_CHECK_START: HookCondition
CONDITION_CHECK_ERROR: HookCondition
CONDITION_CHECK_SUCCESS: HookCondition
CONDITION_FORGET_START: HookCondition
CONDITION_FORGET_ERROR: HookCondition
CONDITION_FORGET_SUCCESS: HookCondition
CONNECTION_STATE_UNKNOWN: ConnectionState
CONNECTION_STATE_PENDING: ConnectionState
CONNECTION_STATE_CONNECTED: ConnectionState
CONNECTION_STATE_DISCONNECTED: ConnectionState
CONNECTION_STATE_RETRY_WAIT: ConnectionState
CONNECTION_STATE_ERROR_AUTH: ConnectionState
CONNECTION_STATE_ERROR_PROTOCOL: ConnectionState
CONNECTION_STATE_ERROR_INTERNAL: ConnectionState
LOG_STATUS_OK: LogStatus
LOG_STATUS_NOT_FOUND: LogStatus
LOG_STATUS_NOT_AVAILABLE: LogStatus
LOG_STATUS_DENIED: LogStatus
LOG_STATUS_BUSY: LogStatus
LOG_STATUS_BAD_REQUEST: LogStatus

class Operation(_message.Message):
    __slots__ = ("id", "repo_id", "plan_id", "status", "unix_time_start_ms", "unix_time_end_ms", "display_message", "snapshot_id", "logref", "flow_id", "instance_id", "modno", "original_id", "original_flow_id", "repo_guid", "original_instance_keyid", "operation_backup", "operation_index_snapshot", "operation_forget", "operation_prune", "operation_restore", "operation_stats", "operation_run_hook", "operation_check", "operation_run_command", "error_output", "peer_instance_id", "output_size_bytes")
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
    OPERATION_BACKUP_FIELD_NUMBER: _ClassVar[int]
    OPERATION_INDEX_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FORGET_FIELD_NUMBER: _ClassVar[int]
    OPERATION_PRUNE_FIELD_NUMBER: _ClassVar[int]
    OPERATION_RESTORE_FIELD_NUMBER: _ClassVar[int]
    OPERATION_STATS_FIELD_NUMBER: _ClassVar[int]
    OPERATION_RUN_HOOK_FIELD_NUMBER: _ClassVar[int]
    OPERATION_CHECK_FIELD_NUMBER: _ClassVar[int]
    OPERATION_RUN_COMMAND_FIELD_NUMBER: _ClassVar[int]
    ERROR_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    PEER_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
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
    operation_backup: OperationBackup
    operation_index_snapshot: OperationIndexSnapshot
    operation_forget: OperationForget
    operation_prune: OperationPrune
    operation_restore: OperationRestore
    operation_stats: OperationStats
    operation_run_hook: OperationRunHook
    operation_check: OperationCheck
    operation_run_command: OperationRunCommand
    error_output: str
    peer_instance_id: str
    output_size_bytes: int
    def __init__(self, id: _Optional[int] = ..., repo_id: _Optional[str] = ..., plan_id: _Optional[str] = ..., status: _Optional[_Union[OperationStatus, str]] = ..., unix_time_start_ms: _Optional[int] = ..., unix_time_end_ms: _Optional[int] = ..., display_message: _Optional[str] = ..., snapshot_id: _Optional[str] = ..., logref: _Optional[str] = ..., flow_id: _Optional[int] = ..., instance_id: _Optional[str] = ..., modno: _Optional[int] = ..., original_id: _Optional[int] = ..., original_flow_id: _Optional[int] = ..., repo_guid: _Optional[str] = ..., original_instance_keyid: _Optional[str] = ..., operation_backup: _Optional[_Union[OperationBackup, _Mapping]] = ..., operation_index_snapshot: _Optional[_Union[OperationIndexSnapshot, _Mapping]] = ..., operation_forget: _Optional[_Union[OperationForget, _Mapping]] = ..., operation_prune: _Optional[_Union[OperationPrune, _Mapping]] = ..., operation_restore: _Optional[_Union[OperationRestore, _Mapping]] = ..., operation_stats: _Optional[_Union[OperationStats, _Mapping]] = ..., operation_run_hook: _Optional[_Union[OperationRunHook, _Mapping]] = ..., operation_check: _Optional[_Union[OperationCheck, _Mapping]] = ..., operation_run_command: _Optional[_Union[OperationRunCommand, _Mapping]] = ..., error_output: _Optional[str] = ..., peer_instance_id: _Optional[str] = ..., output_size_bytes: _Optional[int] = ...) -> None: ...

class OperationBackup(_message.Message):
    __slots__ = ("last_status", "errors")
    LAST_STATUS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    last_status: BackupProgressEntry
    errors: _containers.RepeatedCompositeFieldContainer[BackupProgressError]
    def __init__(self, last_status: _Optional[_Union[BackupProgressEntry, _Mapping]] = ..., errors: _Optional[_Iterable[_Union[BackupProgressError, _Mapping]]] = ...) -> None: ...

class OperationIndexSnapshot(_message.Message):
    __slots__ = ("snapshot", "forgot")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    FORGOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: ResticSnapshot
    forgot: bool
    def __init__(self, snapshot: _Optional[_Union[ResticSnapshot, _Mapping]] = ..., forgot: _Optional[bool] = ...) -> None: ...

class OperationForget(_message.Message):
    __slots__ = ("forget", "policy")
    FORGET_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    forget: _containers.RepeatedCompositeFieldContainer[ResticSnapshot]
    policy: RetentionPolicy
    def __init__(self, forget: _Optional[_Iterable[_Union[ResticSnapshot, _Mapping]]] = ..., policy: _Optional[_Union[RetentionPolicy, _Mapping]] = ...) -> None: ...

class OperationPrune(_message.Message):
    __slots__ = ("output", "output_logref")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_LOGREF_FIELD_NUMBER: _ClassVar[int]
    output: str
    output_logref: str
    def __init__(self, output: _Optional[str] = ..., output_logref: _Optional[str] = ...) -> None: ...

class OperationCheck(_message.Message):
    __slots__ = ("output", "output_logref")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_LOGREF_FIELD_NUMBER: _ClassVar[int]
    output: str
    output_logref: str
    def __init__(self, output: _Optional[str] = ..., output_logref: _Optional[str] = ...) -> None: ...

class OperationRestore(_message.Message):
    __slots__ = ("path", "target", "last_status")
    PATH_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_FIELD_NUMBER: _ClassVar[int]
    path: str
    target: str
    last_status: RestoreProgressEntry
    def __init__(self, path: _Optional[str] = ..., target: _Optional[str] = ..., last_status: _Optional[_Union[RestoreProgressEntry, _Mapping]] = ...) -> None: ...

class OperationStats(_message.Message):
    __slots__ = ("stats",)
    STATS_FIELD_NUMBER: _ClassVar[int]
    stats: RepoStats
    def __init__(self, stats: _Optional[_Union[RepoStats, _Mapping]] = ...) -> None: ...

class OperationRunHook(_message.Message):
    __slots__ = ("name", "output_logref", "condition", "parent_op")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_LOGREF_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    PARENT_OP_FIELD_NUMBER: _ClassVar[int]
    name: str
    output_logref: str
    condition: HookCondition
    parent_op: int
    def __init__(self, name: _Optional[str] = ..., output_logref: _Optional[str] = ..., condition: _Optional[_Union[HookCondition, str]] = ..., parent_op: _Optional[int] = ...) -> None: ...

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

class ResticSnapshot(_message.Message):
    __slots__ = ("id", "unix_time_ms", "hostname", "username", "tree", "parent", "paths", "tags", "summary")
    ID_FIELD_NUMBER: _ClassVar[int]
    UNIX_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    TREE_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    id: str
    unix_time_ms: int
    hostname: str
    username: str
    tree: str
    parent: str
    paths: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    summary: SnapshotSummary
    def __init__(self, id: _Optional[str] = ..., unix_time_ms: _Optional[int] = ..., hostname: _Optional[str] = ..., username: _Optional[str] = ..., tree: _Optional[str] = ..., parent: _Optional[str] = ..., paths: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., summary: _Optional[_Union[SnapshotSummary, _Mapping]] = ...) -> None: ...

class SnapshotSummary(_message.Message):
    __slots__ = ("files_new", "files_changed", "files_unmodified", "dirs_new", "dirs_changed", "dirs_unmodified", "data_blobs", "tree_blobs", "data_added", "total_files_processed", "total_bytes_processed", "total_duration")
    FILES_NEW_FIELD_NUMBER: _ClassVar[int]
    FILES_CHANGED_FIELD_NUMBER: _ClassVar[int]
    FILES_UNMODIFIED_FIELD_NUMBER: _ClassVar[int]
    DIRS_NEW_FIELD_NUMBER: _ClassVar[int]
    DIRS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    DIRS_UNMODIFIED_FIELD_NUMBER: _ClassVar[int]
    DATA_BLOBS_FIELD_NUMBER: _ClassVar[int]
    TREE_BLOBS_FIELD_NUMBER: _ClassVar[int]
    DATA_ADDED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FILES_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DURATION_FIELD_NUMBER: _ClassVar[int]
    files_new: int
    files_changed: int
    files_unmodified: int
    dirs_new: int
    dirs_changed: int
    dirs_unmodified: int
    data_blobs: int
    tree_blobs: int
    data_added: int
    total_files_processed: int
    total_bytes_processed: int
    total_duration: float
    def __init__(self, files_new: _Optional[int] = ..., files_changed: _Optional[int] = ..., files_unmodified: _Optional[int] = ..., dirs_new: _Optional[int] = ..., dirs_changed: _Optional[int] = ..., dirs_unmodified: _Optional[int] = ..., data_blobs: _Optional[int] = ..., tree_blobs: _Optional[int] = ..., data_added: _Optional[int] = ..., total_files_processed: _Optional[int] = ..., total_bytes_processed: _Optional[int] = ..., total_duration: _Optional[float] = ...) -> None: ...

class BackupProgressEntry(_message.Message):
    __slots__ = ("status", "summary")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    status: BackupProgressStatusEntry
    summary: BackupProgressSummary
    def __init__(self, status: _Optional[_Union[BackupProgressStatusEntry, _Mapping]] = ..., summary: _Optional[_Union[BackupProgressSummary, _Mapping]] = ...) -> None: ...

class BackupProgressStatusEntry(_message.Message):
    __slots__ = ("percent_done", "total_files", "total_bytes", "files_done", "bytes_done", "current_file")
    PERCENT_DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FILES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILES_DONE_FIELD_NUMBER: _ClassVar[int]
    BYTES_DONE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FILE_FIELD_NUMBER: _ClassVar[int]
    percent_done: float
    total_files: int
    total_bytes: int
    files_done: int
    bytes_done: int
    current_file: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, percent_done: _Optional[float] = ..., total_files: _Optional[int] = ..., total_bytes: _Optional[int] = ..., files_done: _Optional[int] = ..., bytes_done: _Optional[int] = ..., current_file: _Optional[_Iterable[str]] = ...) -> None: ...

class BackupProgressSummary(_message.Message):
    __slots__ = ("files_new", "files_changed", "files_unmodified", "dirs_new", "dirs_changed", "dirs_unmodified", "data_blobs", "tree_blobs", "data_added", "total_files_processed", "total_bytes_processed", "total_duration", "snapshot_id")
    FILES_NEW_FIELD_NUMBER: _ClassVar[int]
    FILES_CHANGED_FIELD_NUMBER: _ClassVar[int]
    FILES_UNMODIFIED_FIELD_NUMBER: _ClassVar[int]
    DIRS_NEW_FIELD_NUMBER: _ClassVar[int]
    DIRS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    DIRS_UNMODIFIED_FIELD_NUMBER: _ClassVar[int]
    DATA_BLOBS_FIELD_NUMBER: _ClassVar[int]
    TREE_BLOBS_FIELD_NUMBER: _ClassVar[int]
    DATA_ADDED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FILES_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DURATION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    files_new: int
    files_changed: int
    files_unmodified: int
    dirs_new: int
    dirs_changed: int
    dirs_unmodified: int
    data_blobs: int
    tree_blobs: int
    data_added: int
    total_files_processed: int
    total_bytes_processed: int
    total_duration: float
    snapshot_id: str
    def __init__(self, files_new: _Optional[int] = ..., files_changed: _Optional[int] = ..., files_unmodified: _Optional[int] = ..., dirs_new: _Optional[int] = ..., dirs_changed: _Optional[int] = ..., dirs_unmodified: _Optional[int] = ..., data_blobs: _Optional[int] = ..., tree_blobs: _Optional[int] = ..., data_added: _Optional[int] = ..., total_files_processed: _Optional[int] = ..., total_bytes_processed: _Optional[int] = ..., total_duration: _Optional[float] = ..., snapshot_id: _Optional[str] = ...) -> None: ...

class BackupProgressError(_message.Message):
    __slots__ = ("item", "during", "message")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    DURING_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    item: str
    during: str
    message: str
    def __init__(self, item: _Optional[str] = ..., during: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class RestoreProgressEntry(_message.Message):
    __slots__ = ("message_type", "seconds_elapsed", "total_bytes", "bytes_restored", "total_files", "files_restored", "percent_done")
    MESSAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_ELAPSED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    BYTES_RESTORED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FILES_FIELD_NUMBER: _ClassVar[int]
    FILES_RESTORED_FIELD_NUMBER: _ClassVar[int]
    PERCENT_DONE_FIELD_NUMBER: _ClassVar[int]
    message_type: str
    seconds_elapsed: float
    total_bytes: int
    bytes_restored: int
    total_files: int
    files_restored: int
    percent_done: float
    def __init__(self, message_type: _Optional[str] = ..., seconds_elapsed: _Optional[float] = ..., total_bytes: _Optional[int] = ..., bytes_restored: _Optional[int] = ..., total_files: _Optional[int] = ..., files_restored: _Optional[int] = ..., percent_done: _Optional[float] = ...) -> None: ...

class RepoStats(_message.Message):
    __slots__ = ("total_size", "total_uncompressed_size", "compression_ratio", "total_blob_count", "snapshot_count")
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_UNCOMPRESSED_SIZE_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BLOB_COUNT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_COUNT_FIELD_NUMBER: _ClassVar[int]
    total_size: int
    total_uncompressed_size: int
    compression_ratio: float
    total_blob_count: int
    snapshot_count: int
    def __init__(self, total_size: _Optional[int] = ..., total_uncompressed_size: _Optional[int] = ..., compression_ratio: _Optional[float] = ..., total_blob_count: _Optional[int] = ..., snapshot_count: _Optional[int] = ...) -> None: ...

class RetentionPolicy(_message.Message):
    __slots__ = ("policy_keep_last_n", "policy_time_bucketed", "policy_keep_all")
    class TimeBucketedCounts(_message.Message):
        __slots__ = ("hourly", "daily", "weekly", "monthly", "yearly", "keep_last_n")
        HOURLY_FIELD_NUMBER: _ClassVar[int]
        DAILY_FIELD_NUMBER: _ClassVar[int]
        WEEKLY_FIELD_NUMBER: _ClassVar[int]
        MONTHLY_FIELD_NUMBER: _ClassVar[int]
        YEARLY_FIELD_NUMBER: _ClassVar[int]
        KEEP_LAST_N_FIELD_NUMBER: _ClassVar[int]
        hourly: int
        daily: int
        weekly: int
        monthly: int
        yearly: int
        keep_last_n: int
        def __init__(self, hourly: _Optional[int] = ..., daily: _Optional[int] = ..., weekly: _Optional[int] = ..., monthly: _Optional[int] = ..., yearly: _Optional[int] = ..., keep_last_n: _Optional[int] = ...) -> None: ...
    POLICY_KEEP_LAST_N_FIELD_NUMBER: _ClassVar[int]
    POLICY_TIME_BUCKETED_FIELD_NUMBER: _ClassVar[int]
    POLICY_KEEP_ALL_FIELD_NUMBER: _ClassVar[int]
    policy_keep_last_n: int
    policy_time_bucketed: RetentionPolicy.TimeBucketedCounts
    policy_keep_all: bool
    def __init__(self, policy_keep_last_n: _Optional[int] = ..., policy_time_bucketed: _Optional[_Union[RetentionPolicy.TimeBucketedCounts, _Mapping]] = ..., policy_keep_all: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("ids", "plan_id", "snapshot_id", "flow_id", "instance_id", "repo_guid", "original_instance_keyid", "peer_instance_id")
    IDS_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    REPO_GUID_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_INSTANCE_KEYID_FIELD_NUMBER: _ClassVar[int]
    PEER_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[int]
    plan_id: str
    snapshot_id: str
    flow_id: int
    instance_id: str
    repo_guid: str
    original_instance_keyid: str
    peer_instance_id: str
    def __init__(self, ids: _Optional[_Iterable[int]] = ..., plan_id: _Optional[str] = ..., snapshot_id: _Optional[str] = ..., flow_id: _Optional[int] = ..., instance_id: _Optional[str] = ..., repo_guid: _Optional[str] = ..., original_instance_keyid: _Optional[str] = ..., peer_instance_id: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("peer_instance_id", "peer_keyid", "state", "status_message", "known_plans", "known_repos", "remote_config", "last_heartbeat_millis", "last_disconnect_millis", "last_error", "last_error_millis")
    PEER_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_KEYID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    KNOWN_PLANS_FIELD_NUMBER: _ClassVar[int]
    KNOWN_REPOS_FIELD_NUMBER: _ClassVar[int]
    REMOTE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_MILLIS_FIELD_NUMBER: _ClassVar[int]
    LAST_DISCONNECT_MILLIS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_MILLIS_FIELD_NUMBER: _ClassVar[int]
    peer_instance_id: str
    peer_keyid: str
    state: ConnectionState
    status_message: str
    known_plans: _containers.RepeatedScalarFieldContainer[str]
    known_repos: _containers.RepeatedScalarFieldContainer[str]
    remote_config: RemoteConfig
    last_heartbeat_millis: int
    last_disconnect_millis: int
    last_error: str
    last_error_millis: int
    def __init__(self, peer_instance_id: _Optional[str] = ..., peer_keyid: _Optional[str] = ..., state: _Optional[_Union[ConnectionState, str]] = ..., status_message: _Optional[str] = ..., known_plans: _Optional[_Iterable[str]] = ..., known_repos: _Optional[_Iterable[str]] = ..., remote_config: _Optional[_Union[RemoteConfig, _Mapping]] = ..., last_heartbeat_millis: _Optional[int] = ..., last_disconnect_millis: _Optional[int] = ..., last_error: _Optional[str] = ..., last_error_millis: _Optional[int] = ...) -> None: ...

class SyncStreamItem(_message.Message):
    __slots__ = ("handshake", "heartbeat", "diff_operations", "send_operations", "send_config", "set_config", "list_resources", "request_log", "log_data", "error", "sync_cursors", "check_digest", "throttle")
    class Handshake(_message.Message):
        __slots__ = ("protocol_version", "public_key", "instance_id", "nonce", "signature", "join", "resync")
        PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
        PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
        INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
        NONCE_FIELD_NUMBER: _ClassVar[int]
        SIGNATURE_FIELD_NUMBER: _ClassVar[int]
        JOIN_FIELD_NUMBER: _ClassVar[int]
        RESYNC_FIELD_NUMBER: _ClassVar[int]
        protocol_version: int
        public_key: PublicKey
        instance_id: str
        nonce: bytes
        signature: bytes
        join: SyncStreamItem.Join
        resync: int
        def __init__(self, protocol_version: _Optional[int] = ..., public_key: _Optional[_Union[PublicKey, _Mapping]] = ..., instance_id: _Optional[str] = ..., nonce: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., join: _Optional[_Union[SyncStreamItem.Join, _Mapping]] = ..., resync: _Optional[int] = ...) -> None: ...
    class Join(_message.Message):
        __slots__ = ("invitation_id", "signature")
        INVITATION_ID_FIELD_NUMBER: _ClassVar[int]
        SIGNATURE_FIELD_NUMBER: _ClassVar[int]
        invitation_id: str
        signature: bytes
        def __init__(self, invitation_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...
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
    class SyncCursors(_message.Message):
        __slots__ = ("cursors",)
        CURSORS_FIELD_NUMBER: _ClassVar[int]
        cursors: _containers.RepeatedCompositeFieldContainer[SyncCursor]
        def __init__(self, cursors: _Optional[_Iterable[_Union[SyncCursor, _Mapping]]] = ...) -> None: ...
    class CheckDigest(_message.Message):
        __slots__ = ("selector", "ranges", "cursor", "in_sync", "hub_ranges", "hub_ids", "hub_modnos")
        SELECTOR_FIELD_NUMBER: _ClassVar[int]
        RANGES_FIELD_NUMBER: _ClassVar[int]
        CURSOR_FIELD_NUMBER: _ClassVar[int]
        IN_SYNC_FIELD_NUMBER: _ClassVar[int]
        HUB_RANGES_FIELD_NUMBER: _ClassVar[int]
        HUB_IDS_FIELD_NUMBER: _ClassVar[int]
        HUB_MODNOS_FIELD_NUMBER: _ClassVar[int]
        selector: OpSelector
        ranges: _containers.RepeatedCompositeFieldContainer[DigestRange]
        cursor: SyncCursor
        in_sync: bool
        hub_ranges: _containers.RepeatedCompositeFieldContainer[DigestRange]
        hub_ids: _containers.RepeatedScalarFieldContainer[int]
        hub_modnos: _containers.RepeatedScalarFieldContainer[int]
        def __init__(self, selector: _Optional[_Union[OpSelector, _Mapping]] = ..., ranges: _Optional[_Iterable[_Union[DigestRange, _Mapping]]] = ..., cursor: _Optional[_Union[SyncCursor, _Mapping]] = ..., in_sync: _Optional[bool] = ..., hub_ranges: _Optional[_Iterable[_Union[DigestRange, _Mapping]]] = ..., hub_ids: _Optional[_Iterable[int]] = ..., hub_modnos: _Optional[_Iterable[int]] = ...) -> None: ...
    class RequestLog(_message.Message):
        __slots__ = ("request_id", "operation_id", "offset", "max_bytes")
        REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
        OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
        OFFSET_FIELD_NUMBER: _ClassVar[int]
        MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
        request_id: int
        operation_id: int
        offset: int
        max_bytes: int
        def __init__(self, request_id: _Optional[int] = ..., operation_id: _Optional[int] = ..., offset: _Optional[int] = ..., max_bytes: _Optional[int] = ...) -> None: ...
    class LogData(_message.Message):
        __slots__ = ("request_id", "status", "offset", "data", "last", "log_size", "complete", "message", "log_start")
        REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
        STATUS_FIELD_NUMBER: _ClassVar[int]
        OFFSET_FIELD_NUMBER: _ClassVar[int]
        DATA_FIELD_NUMBER: _ClassVar[int]
        LAST_FIELD_NUMBER: _ClassVar[int]
        LOG_SIZE_FIELD_NUMBER: _ClassVar[int]
        COMPLETE_FIELD_NUMBER: _ClassVar[int]
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        LOG_START_FIELD_NUMBER: _ClassVar[int]
        request_id: int
        status: LogStatus
        offset: int
        data: bytes
        last: bool
        log_size: int
        complete: bool
        message: str
        log_start: int
        def __init__(self, request_id: _Optional[int] = ..., status: _Optional[_Union[LogStatus, str]] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., last: _Optional[bool] = ..., log_size: _Optional[int] = ..., complete: _Optional[bool] = ..., message: _Optional[str] = ..., log_start: _Optional[int] = ...) -> None: ...
    HANDSHAKE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    DIFF_OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    SEND_OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    SEND_CONFIG_FIELD_NUMBER: _ClassVar[int]
    SET_CONFIG_FIELD_NUMBER: _ClassVar[int]
    LIST_RESOURCES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_LOG_FIELD_NUMBER: _ClassVar[int]
    LOG_DATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SYNC_CURSORS_FIELD_NUMBER: _ClassVar[int]
    CHECK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    THROTTLE_FIELD_NUMBER: _ClassVar[int]
    handshake: SyncStreamItem.Handshake
    heartbeat: SyncStreamItem.Heartbeat
    diff_operations: SyncStreamItem.DiffOperations
    send_operations: SyncStreamItem.SendOperations
    send_config: SyncStreamItem.SendConfig
    set_config: SyncStreamItem.SetConfig
    list_resources: SyncStreamItem.ListResources
    request_log: SyncStreamItem.RequestLog
    log_data: SyncStreamItem.LogData
    error: SyncStreamItem.Error
    sync_cursors: SyncStreamItem.SyncCursors
    check_digest: SyncStreamItem.CheckDigest
    throttle: SyncStreamItem.Throttle
    def __init__(self, handshake: _Optional[_Union[SyncStreamItem.Handshake, _Mapping]] = ..., heartbeat: _Optional[_Union[SyncStreamItem.Heartbeat, _Mapping]] = ..., diff_operations: _Optional[_Union[SyncStreamItem.DiffOperations, _Mapping]] = ..., send_operations: _Optional[_Union[SyncStreamItem.SendOperations, _Mapping]] = ..., send_config: _Optional[_Union[SyncStreamItem.SendConfig, _Mapping]] = ..., set_config: _Optional[_Union[SyncStreamItem.SetConfig, _Mapping]] = ..., list_resources: _Optional[_Union[SyncStreamItem.ListResources, _Mapping]] = ..., request_log: _Optional[_Union[SyncStreamItem.RequestLog, _Mapping]] = ..., log_data: _Optional[_Union[SyncStreamItem.LogData, _Mapping]] = ..., error: _Optional[_Union[SyncStreamItem.Error, _Mapping]] = ..., sync_cursors: _Optional[_Union[SyncStreamItem.SyncCursors, _Mapping]] = ..., check_digest: _Optional[_Union[SyncStreamItem.CheckDigest, _Mapping]] = ..., throttle: _Optional[_Union[SyncStreamItem.Throttle, _Mapping]] = ...) -> None: ...

class SyncCursor(_message.Message):
    __slots__ = ("selection", "epoch", "sequence")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    selection: str
    epoch: bytes
    sequence: int
    def __init__(self, selection: _Optional[str] = ..., epoch: _Optional[bytes] = ..., sequence: _Optional[int] = ...) -> None: ...

class DigestRange(_message.Message):
    __slots__ = ("first_bucket", "last_bucket", "count", "digest")
    FIRST_BUCKET_FIELD_NUMBER: _ClassVar[int]
    LAST_BUCKET_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    first_bucket: int
    last_bucket: int
    count: int
    digest: int
    def __init__(self, first_bucket: _Optional[int] = ..., last_bucket: _Optional[int] = ..., count: _Optional[int] = ..., digest: _Optional[int] = ...) -> None: ...
