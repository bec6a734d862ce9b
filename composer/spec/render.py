"""How ``composer config`` prints a resolved project: the same JSON and YAML as Compose v2.

v2 prints Go structs: a struct field with its zero value is left out, but a mapping keeps
every entry (``environment: {A: null}``), and ``command``/``entrypoint`` always appear.
``FREE_FORM`` lists the attributes that are mappings rather than structs, ``KEEP_ZERO``
those printed even when false or 0.
"""

from __future__ import annotations

import json
from typing import Any

FREE_FORM = frozenset({
    "environment", "labels", "annotations", "sysctls", "storage_opt", "driver_opts", "options",
    "args", "additional_contexts", "aux_addresses", "depends_on", "ulimits", "networks",
    "extra_labels", "models",
})
KEEP_ZERO = frozenset({"attach", "init", "scale", "replicas", "retries", "required", "command", "entrypoint",
                       "count", "soft", "hard", "value", "enable_ipv4", "enable_ipv6"})
# Byte sizes are numbers inside the loader and strings in v2's output.
BYTE_SIZES = frozenset({"memory", "mem_limit", "mem_reservation", "memswap_limit", "mem_swappiness", "shm_size",
                        "size"})
# Go structs without JSON tags print their field names capitalised.
GO_FIELD_NAMES = {"path": "Path", "rate": "Rate", "weight": "Weight"}
_SERVICE_HIDDEN = ("env_file", "label_file")
TOP_LEVEL_ORDER = ("name", "services", "networks", "volumes", "secrets", "configs", "models")


def _is_zero(value: Any) -> bool:
    return value is None or value is False or value == "" or (
        isinstance(value, int | float) and not isinstance(value, bool) and value == 0
    ) or (isinstance(value, list) and not value)


def _struct(value: dict[str, Any], yaml: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key.startswith("x-"):
            if yaml:  # v2's YAML inlines each struct's extensions; its JSON leaves them out
                result[key] = item
            continue
        if key in KEEP_ZERO and not (yaml and item is None):  # YAML: a nil pointer is left out
            result[key] = _value(key, item, yaml)
            continue
        if _is_zero(item):
            continue
        if key in FREE_FORM and isinstance(item, dict):
            if item:
                result[key] = {name: _free(entry, yaml) for name, entry in sorted(item.items())}
            continue
        result[key] = _value(key, item, yaml)
    return result


def _free(value: Any, yaml: bool) -> Any:
    if isinstance(value, dict):
        return _struct(value, yaml)
    return value


def _value(key: str, value: Any, yaml: bool = False) -> Any:
    if key == "deploy" and isinstance(value, dict):
        return _struct(value, yaml) if yaml else {"resources": {}, "placement": {}, **_struct(value)}
    if key in BYTE_SIZES and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if key in ("device_read_bps", "device_write_bps", "device_read_iops", "device_write_iops", "weight_device"):
        # JSON: Go's field names (the struct has no JSON tags); YAML: its yaml tags
        return [{name if yaml else GO_FIELD_NAMES.get(name, name): str(entry) if name == "rate" else entry
                 for name, entry in _struct(item, yaml).items()}
                for item in value or [] if isinstance(item, dict)]
    if key == "watch" and isinstance(value, list):
        return [_watch_rule(rule, yaml) if isinstance(rule, dict) else rule for rule in value]
    if key == "extra_hosts" and isinstance(value, list):
        return _hosts_by_name(value)
    if isinstance(value, dict):
        return _struct(value, yaml)
    if isinstance(value, list):
        return [_struct(item, yaml) if isinstance(item, dict) else item for item in value]
    return value


def _watch_rule(rule: dict[str, Any], yaml: bool) -> dict[str, Any]:
    """JSON always prints the rule's ``exec`` (a struct, not a pointer); YAML omits an empty one."""
    printed = _struct(rule, yaml)
    hook = _struct(rule.get("exec") or {}, yaml)
    if hook or not yaml:
        printed["exec"] = hook or {"command": None}
    return printed


def _hosts_by_name(entries: list[Any]) -> list[str]:
    """v2 keeps extra hosts as a map from host name to addresses: grouped, names sorted."""
    by_host: dict[str, list[str]] = {}
    for entry in entries:
        host, _, address = str(entry).partition("=")
        by_host.setdefault(host, []).append(address)
    return [f"{host}={address}" for host in sorted(by_host) for address in by_host[host]]


def service_output(service: dict[str, Any], *, yaml: bool = False) -> dict[str, Any]:
    """One service of the tree as v2 prints it (in JSON, which its configuration hash is of,
    unless ``yaml``: then ``command`` and ``entrypoint`` appear only when set)."""
    visible = {key: value for key, value in service.items() if key not in _SERVICE_HIDDEN}
    result = _struct(visible, yaml)
    if not yaml:
        result.setdefault("command", None)
        result.setdefault("entrypoint", None)
    return result


def resource_output(kind: str, resource: dict[str, Any], *, yaml: bool = False) -> dict[str, Any]:
    """One network, volume, secret, config or model (``kind``, plural) as v2 prints it."""
    result = _struct(resource, yaml)
    if kind == "networks" and not yaml:
        result.setdefault("ipam", {})
    return result


def project_output(tree: dict[str, Any], *, yaml: bool = False) -> dict[str, Any]:
    """The project as v2 prints it, ready for ``json.dumps`` or (``yaml``) for ``to_yaml``: v2's
    two printers differ (Go's json and yaml struct tags): its YAML leaves empty structs and unset
    ``command``/``entrypoint`` out, and keeps every struct's ``x-`` keys and the top-level models."""
    output: dict[str, Any] = {}
    if tree.get("name"):
        output["name"] = tree["name"]
    services = tree.get("services") or {}
    output["services"] = {name: service_output(services[name] or {}, yaml=yaml) for name in sorted(services)}
    for kind in ("networks", "volumes", "secrets", "configs", *(("models",) if yaml else ())):
        resources = tree.get(kind)
        if resources:
            output[kind] = {name: resource_output(kind, resources[name] or {}, yaml=yaml)
                            for name in sorted(resources)}
    for key in sorted(tree):
        if key.startswith("x-"):
            output[key] = tree[key]
    return output


def escape_dollars(text: str) -> str:
    """v2 prints ``$`` as ``$$`` so that its output can be read back without interpolation."""
    return text.replace("$", "$$")


def to_json(output: dict[str, Any]) -> str:
    printed = {key: _json_extension(value) if key.startswith("x-") else value for key, value in output.items()}
    return json.dumps(printed, indent=2, ensure_ascii=False) + "\n"


def _json_extension(value: Any) -> Any:
    """An ``x-`` value as v2's JSON prints it: an empty sequence, at any depth, is ``null`` (Go's
    nil slice), where its YAML keeps ``[]``; an empty mapping stays ``{}``."""
    if isinstance(value, list):
        return [_json_extension(item) for item in value] if value else None
    if isinstance(value, dict):
        return {key: _json_extension(item) for key, item in value.items()}
    return value


def to_yaml(output: dict[str, Any]) -> str:
    """Block-style YAML with 2-space indents, keys in the output's order."""
    lines: list[str] = []
    _emit(output, 0, lines)
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    if "\n" in text:
        return json.dumps(text, ensure_ascii=False)
    if text == "" or _needs_quotes(text):
        return json.dumps(text, ensure_ascii=False)
    return text


def _needs_quotes(text: str) -> bool:
    from composer.spec.yamlio import resolve_plain_scalar

    if resolve_plain_scalar(text) != text or text in ("yes", "no", "on", "off", "y", "n", "Y", "N"):
        return True
    if text[0] in "!&*-?[]{}|>'\"%@`#,: " or text[-1] in ": ":
        return True
    return ": " in text or " #" in text or "\t" in text


def _emit(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            key_text = _scalar(str(key))
            if isinstance(item, dict) and item:
                lines.append(f"{pad}{key_text}:")
                _emit(item, indent + 2, lines)
            elif isinstance(item, list) and item:
                lines.append(f"{pad}{key_text}:")
                _emit(item, indent + 2, lines)
            elif isinstance(item, dict | list):
                lines.append(f"{pad}{key_text}: {'{}' if isinstance(item, dict) else '[]'}")
            else:
                lines.append(f"{pad}{key_text}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                nested: list[str] = []
                _emit(item, indent + 2, nested)
                first = nested[0][indent + 2:]
                lines.append(f"{pad}- {first}")
                lines.extend(nested[1:])
            elif isinstance(item, dict | list):
                lines.append(f"{pad}- {'{}' if isinstance(item, dict) else '[]'}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
