"""Shell completion of node and device names from the config (click's own completion:
``eval "$(_RINGMGR_COMPLETE=bash_source ringmgr)"``; zsh_source and fish_source too).

``attach`` gives every NODE, NODE[/DEV] and DEV parameter of the ring and host commands
its completion, by parameter name, in one place; the compute and controller runbooks
name compute hosts (not config nodes) and are left alone.
"""

from __future__ import annotations

import click

# parameter name -> kind of completion
_KINDS = {"node": "node", "nodes": "node", "target": "node_dev", "down": "node_dev",
          "device": "dev", "dev": "dev"}
_SKIP_GROUPS = ("compute", "controller")
_HOST_COMMANDS = ("push", "verify")  # proxies get rings too


def _config(ctx: click.Context):
    """The config the command line names (--config, $RINGMGR_CONFIG, ...); None if it
    cannot be read: completion never fails loudly."""
    from ringmgr.config import find_config_path, load_config

    try:
        return load_config(find_config_path(ctx.find_root().params.get("config_path")))
    except Exception:
        return None


def _devices(node) -> list[str]:
    names = set(node.devices)
    for devs in node.ring_devices.values():
        names.update(devs)
    return sorted(names)


def _items(pairs, incomplete: str):
    from click.shell_completion import CompletionItem

    return [CompletionItem(value, help=help_) for value, help_ in pairs
            if value.startswith(incomplete)]


def complete_nodes(ctx, param, incomplete):
    config = _config(ctx)
    if config is None:
        return []
    hosts = sorted(config.nodes.items())
    if ctx.command.name in _HOST_COMMANDS:
        hosts += sorted(config.proxies.items())
    return _items(((name, h.host) for name, h in hosts), incomplete)


def complete_node_dev(ctx, param, incomplete):
    """NODE, or NODE/DEV once the slash is typed."""
    if "/" not in incomplete:
        return complete_nodes(ctx, param, incomplete)
    config = _config(ctx)
    name = incomplete.split("/", 1)[0]
    if config is None or name not in config.nodes:
        return []
    return _items(((f"{name}/{d}", None) for d in _devices(config.nodes[name])), incomplete)


def complete_devices(ctx, param, incomplete):
    """DEV of the NODE given before it on the command line."""
    config = _config(ctx)
    node = ctx.params.get("node")
    if config is None or node not in config.nodes:
        return []
    return _items(((d, None) for d in _devices(config.nodes[node])), incomplete)


_FUNCS = {"node": complete_nodes, "node_dev": complete_node_dev, "dev": complete_devices}


def attach(group: click.Group) -> None:
    """Give the node and device parameters of ``group``'s commands their completion."""
    for name, command in group.commands.items():
        if name in _SKIP_GROUPS:
            continue
        if isinstance(command, click.Group):
            attach(command)
            continue
        for param in command.params:
            kind = _KINDS.get(param.name)
            if kind and getattr(param, "_custom_shell_complete", None) is None:
                # click keeps shell_complete= of the decorator here; set after the fact
                # so that the commands' modules need no completion code of their own
                param._custom_shell_complete = _FUNCS[kind]
