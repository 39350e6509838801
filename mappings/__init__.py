"""GridHub's declarative mapping language: one YAML document per department system turns
its payloads into canonical fields (``mappings/README.md``). Imports nothing of the hub."""

from mappings.canonical import CANONICAL_FIELDS, FIELD_CHOICES, PII_FIELDS, CanonicalStatus
from mappings.document import (
    Bounds,
    Condition,
    FieldSpec,
    LocationSpec,
    MappingDocument,
    OutboundAction,
    StatusMap,
    SystemVocabulary,
    TransformStep,
)
from mappings.documents import (
    DEFAULTS_DIR,
    default_document_path,
    default_systems,
    load_default,
    load_document_text,
)
from mappings.engine import (
    MappedRecord,
    PreviewRow,
    Provenance,
    map_payload,
    outbound_action,
    outbound_code,
    preview,
)
from mappings.errors import Issue, MappingDocumentError, MappingError, MappingErrorKind
from mappings.schema import load_document
from mappings.taxonomy import Category, Taxonomy, load_taxonomy
from mappings.transforms import (
    TRANSFORMS,
    TransformError,
    get_transform,
    register_transform,
    unregister_transform,
)
from mappings.validate import validate

__all__ = [
    "CANONICAL_FIELDS",
    "DEFAULTS_DIR",
    "FIELD_CHOICES",
    "PII_FIELDS",
    "TRANSFORMS",
    "Bounds",
    "CanonicalStatus",
    "Category",
    "Condition",
    "FieldSpec",
    "Issue",
    "LocationSpec",
    "MappedRecord",
    "MappingDocument",
    "MappingDocumentError",
    "MappingError",
    "MappingErrorKind",
    "OutboundAction",
    "PreviewRow",
    "Provenance",
    "StatusMap",
    "SystemVocabulary",
    "Taxonomy",
    "TransformError",
    "TransformStep",
    "default_document_path",
    "default_systems",
    "get_transform",
    "load_default",
    "load_document",
    "load_document_text",
    "load_taxonomy",
    "map_payload",
    "outbound_action",
    "outbound_code",
    "preview",
    "register_transform",
    "unregister_transform",
    "validate",
]
