"""Stage 5: merging canonical documents (``-f a.yaml -f b.yaml``, ``extends``, ``include``).

Both sides are already in canonical long syntax, so mappings merge key by key and lists
are appended; then lists at the paths of ``UNIQUE_KEYS`` drop earlier entries that a later
one replaces (a volume with the same target, a port with the same binding...), keeping the
first entry's position as v2 does. ``SPECIAL_RULES`` holds the attributes that do not
follow the default (``command`` is replaced, never appended).

``!reset`` and ``!override`` are applied by the caller before merging: the paths they
mark are deleted from the base, so the override's value (or nothing) takes their place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from composer.spec.modelpath import ANY, PathKey

Merger = Callable[[Any, Any, PathKey], Any]
Indexer = Callable[[Any], str]


def _replace(base: Any, override: Any, path: PathKey) -> Any:
    return override


def _merge_logging(base: Any, override: Any, path: PathKey) -> Any:
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    same_driver = base.get("driver") == override.get("driver")
    if same_driver or "driver" not in base or "driver" not in override:
        return _merge_plain(base, override, path)
    return override


def _merge_ipam_config(base: Any, override: Any, path: PathKey) -> Any:
    if not isinstance(base, list) or not isinstance(override, list):
        return override
    result = [dict(entry) if isinstance(entry, dict) else entry for entry in base]
    for entry in override:
        subnet = entry.get("subnet") if isinstance(entry, dict) else None
        for index, existing in enumerate(result):
            if isinstance(existing, dict) and existing.get("subnet") == subnet:
                result[index] = _merge_plain(existing, entry, path)
                break
        else:
            result.append(entry)
    return result


# Service attributes (the path below services.<name>) with their own merge rule.
SPECIAL_RULES: dict[PathKey, Merger] = {
    ("command",): _replace,
    ("entrypoint",): _replace,
    ("healthcheck", "test"): _replace,
    ("logging",): _merge_logging,
    ("ulimits", ANY): _replace,
    ("build", "ulimits", ANY): _replace,
}
NETWORK_RULES: dict[PathKey, Merger] = {("ipam", "config"): _merge_ipam_config}


def _key_value(item: Any) -> str:
    return str(item).partition("=")[0] if not isinstance(item, dict) else repr(sorted(item.items()))


def _exact(item: Any) -> str:
    return repr(item)


def _volume_target(item: Any) -> str:
    return str(item.get("target")) if isinstance(item, dict) else str(item)


def _port_key(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    host = item.get("host_ip", "0.0.0.0")
    return f"{host}:{item.get('published', '')}:{item.get('target')}/{item.get('protocol', 'tcp')}"


def _mount_key(default_dir: str) -> Indexer:
    def key(item: Any) -> str:
        if not isinstance(item, dict):
            return f"{default_dir}/{item}"
        target = item.get("target")
        if target:
            return str(target)
        return f"{default_dir}/{item.get('source')}"
    return key


def _env_file_key(item: Any) -> str:
    return str(item.get("path")) if isinstance(item, dict) else str(item)


def _device_key(item: Any) -> str:
    return str(item.get("target")) if isinstance(item, dict) else str(item)


UNIQUE_KEYS: dict[PathKey, Indexer] = {
    ("build", "tags"): _key_value,
    ("build", "platforms"): _key_value,
    ("build", "extra_hosts"): _exact,
    ("cap_add",): _key_value,
    ("cap_drop",): _key_value,
    ("configs",): _mount_key(""),
    ("devices",): _device_key,
    ("dns",): _key_value,
    ("dns_opt",): _key_value,
    ("dns_search",): _key_value,
    ("env_file",): _env_file_key,
    ("expose",): _exact,
    ("extra_hosts",): _exact,
    ("label_file",): _exact,
    ("links",): _key_value,
    ("networks", ANY, "aliases"): _key_value,
    ("networks", ANY, "link_local_ips"): _key_value,
    ("ports",): _port_key,
    ("profiles",): _key_value,
    ("secrets",): _mount_key("/run/secrets"),
    ("tmpfs",): _key_value,
    ("volumes",): _volume_target,
}


def unique(items: list[Any], indexer: Indexer) -> list[Any]:
    """Drop entries replaced by a later one with the same key; the first position is kept."""
    result: list[Any] = []
    positions: dict[str, int] = {}
    for item in items:
        key = indexer(item)
        if key in positions:
            result[positions[key]] = item
        else:
            positions[key] = len(result)
            result.append(item)
    return result


def _lookup(table: dict[PathKey, Any], relative: PathKey) -> Any:
    found = table.get(relative)
    if found is None and len(relative) >= 2:
        found = table.get((relative[0], ANY, *relative[2:]))
    if found is None and len(relative) >= 3:
        found = table.get((relative[0], relative[1], ANY, *relative[3:]))
    return found


def _rules_for(path: PathKey) -> tuple[dict[PathKey, Merger], PathKey] | None:
    if len(path) >= 3 and path[0] == "services":
        return SPECIAL_RULES, path[2:]
    if len(path) >= 3 and path[0] == "networks":
        return NETWORK_RULES, path[2:]
    return None


def merge_values(base: Any, override: Any, path: PathKey) -> Any:
    """Merge ``override`` into ``base`` at ``path``; neither input is modified."""
    found = _rules_for(path)
    if found is not None:
        table, relative = found
        rule = _lookup(table, relative)
        if rule is not None:
            return rule(base, override, path)
    return _merge_plain(base, override, path)


def _merge_plain(base: Any, override: Any, path: PathKey) -> Any:
    """The default rule: mappings merge key by key, lists append, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        result = dict(base)
        for key, value in override.items():
            result[key] = merge_values(base[key], value, (*path, key)) if key in base else value
        return result
    if isinstance(base, list) and isinstance(override, list):
        return _unique_at(base + override, path)
    return override


def _unique_at(items: list[Any], path: PathKey) -> list[Any]:
    if len(path) >= 3 and path[0] == "services":
        indexer = _lookup(UNIQUE_KEYS, path[2:])
        if indexer is not None:
            return unique(items, indexer)
    return items


def enforce_unicity(tree: dict[str, Any]) -> dict[str, Any]:
    """Deduplicate the lists of every service, as if each had been merged with itself."""
    services = tree.get("services")
    if not isinstance(services, dict):
        return tree
    result = dict(tree)
    result["services"] = {
        name: _unique_service(service, ("services", name)) if isinstance(service, dict) else service
        for name, service in services.items()
    }
    return result


def _unique_service(value: Any, path: PathKey) -> Any:
    if isinstance(value, dict):
        return {key: _unique_service(item, (*path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return _unique_at(value, path)
    return value


def delete_paths(tree: Any, paths: list[PathKey]) -> Any:
    """A copy of ``tree`` without the values at ``paths`` (how ``!reset`` clears a base)."""
    result = tree
    for path in paths:
        result = _delete(result, path)
    return result


def _delete(tree: Any, path: PathKey) -> Any:
    if not path:
        return tree
    head, rest = path[0], path[1:]
    if isinstance(tree, dict) and head in tree:
        copy = dict(tree)
        if rest:
            copy[head] = _delete(tree[head], rest)
        else:
            del copy[head]
        return copy
    return tree
