"""Reading mapping YAML safely for code tables.

Two YAML habits would corrupt code tables silently, so this loader changes them:

- mapping keys are kept exactly as written: ``0101: x`` is the key ``"0101"`` (plain
  YAML makes it the octal number 65), ``10:`` is ``"10"``, ``08:`` stays ``"08"``;
- a key given twice in one mapping is an error (plain YAML keeps the last one).
"""

from __future__ import annotations

from typing import Any

import yaml

from mappings.errors import Issue, MappingDocumentError


class _KeysAsWritten(yaml.SafeLoader):
    """SafeLoader whose mapping keys are the scalar text as written."""


def _construct_mapping(loader: _KeysAsWritten, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)  # resolves `<<` merge keys
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key: Any = key_node.value
        else:
            key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_KeysAsWritten.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str) -> Any:
    """Parse YAML text; raises ``MappingDocumentError`` with the line of a syntax error."""
    try:
        return yaml.load(text, Loader=_KeysAsWritten)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise MappingDocumentError([Issue(where, f"YAML: {exc.problem or exc}")]) from exc
    except yaml.YAMLError as exc:
        raise MappingDocumentError([Issue("", f"YAML: {exc}")]) from exc
