"""Adapters from settings to the core's definitions: what the engine, the simulation and
the scheduler are built from. The only place that knows both the settings model and
the core's types, so neither has to know the other."""

from __future__ import annotations

from ocsd.config.settings import Settings, derive_uuid
from ocsd.core.engine import GroupDefinition
from ocsd.core.identity import CallingListIdentity, GroupIdentity
from ocsd.core.schedule import Entry
from ocsd.core.simulation import GroupModel, ListModel


def group_definitions(settings: Settings) -> dict[int, GroupDefinition]:
    """Every configured group's definition, by DBID: those of this instance's shard."""
    result = {}
    for name, group in settings.campaign_groups.items():
        if not settings.in_shard(group.dbid):
            continue
        result[group.dbid] = GroupDefinition(
            identity=group_identity(settings, name),
            dialing=group.default_dialing(),
            model=group_model(settings, name),
            auto_complete=group.auto_complete,
        )
    return result


def group_schedules(settings: Settings) -> dict[int, tuple[Entry, ...]]:
    """The schedule entries of every group of this instance's shard that has some."""
    return {
        group.dbid: group.schedule_entries()
        for group in settings.campaign_groups.values()
        if group.schedule and settings.in_shard(group.dbid)
    }


def group_identity(settings: Settings, name: str) -> GroupIdentity:
    """The identity fields every body of the configured group ``name`` carries."""
    group = settings.campaign_groups[name]
    return GroupIdentity(
        name=name,
        dbid=group.dbid,
        uuid=group.uuid or derive_uuid(group.dbid),
        campaign=group.campaign,
        group=group.group,
        queue=group.queue,
        template=group.template,
        calling_lists=tuple(
            CallingListIdentity(list_name, settings.calling_lists[list_name].dbid)
            for list_name in group.calling_lists
        ),
    )


def list_model(settings: Settings, list_name: str) -> ListModel:
    """The simulation model of the configured calling list ``list_name``."""
    cl = settings.calling_lists[list_name]
    return ListModel(
        name=list_name,
        dbid=cl.dbid,
        records=cl.records,
        live_answer_rate=cl.live_answer_rate,
        answering_machine_rate=cl.answering_machine_rate,
        busy_rate=cl.busy_rate,
        ring_time=cl.ring_time,
        no_answer_timeout=cl.no_answer_timeout,
        max_attempts=cl.max_attempts,
        redial_delay=cl.redial_delay,
    )


def group_model(settings: Settings, name_or_dbid: str) -> GroupModel:
    """The simulation model of a configured group, by name or DBID; ValueError names the
    configured ones."""
    name = resolve_group(settings, name_or_dbid)
    group = settings.campaign_groups[name]
    return GroupModel(
        name=name,
        dbid=group.dbid,
        lists=tuple(list_model(settings, list_name) for list_name in group.calling_lists),
        agents=group.agents,
        talk_time=group.talk_time,
        wrap_up_time=group.wrap_up_time,
        lines_per_agent=group.lines_per_agent,
        ports=group.ports,
        dialing=group.default_dialing().effective(),
    )


def resolve_group(settings: Settings, name_or_dbid: str) -> str:
    """The configured group name for a name or a DBID; ValueError lists the configured ones."""
    groups = settings.campaign_groups
    if name_or_dbid in groups:
        return name_or_dbid
    text = name_or_dbid.strip()
    for name, group in groups.items():
        if text.isdigit() and group.dbid == int(text):
            return name
    for name in groups:
        if name.lower() == text.lower():
            return name
    known = ", ".join(f"{name!r} (dbid {g.dbid})" for name, g in groups.items()) or "none"
    raise ValueError(f"unknown campaign group {name_or_dbid!r}; configured: {known}")


def shard_hint(settings: Settings) -> str:
    """Said with an unknown DBID when this instance runs one shard of the groups."""
    shard = settings.shard
    if shard is None:
        return ""
    return (
        f" in shard {shard} ([ocsd] shard): this instance runs the groups whose "
        f"dbid mod {shard.of} = {shard.number - 1}"
    )
