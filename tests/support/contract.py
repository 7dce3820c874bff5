"""The body contract written out by hand for the tests (docs/contract.md, "The body").

An oracle independent of ``ocsd.core.genesys``: a renamed constant there fails these
tests instead of changing what they expect.
"""

from __future__ import annotations

import re
from typing import Any

_NUMBER_OR_NULL = (float, int, type(None))

#: The fields every body carries, with their JSON types.
MANDATORY: dict[str, type | tuple[type, ...]] = {
    "GSW_USER_EVENT": str,
    "GSW_DATE_TIME": str,
    "GSW_TENANT_NAME": str,
    "GSW_TENANT_CCID": str,
    "GSW_CAMPAIGN_GROUP_NAME": str,
    "GSW_CAMPAIGN_GROUP_UUID": str,
    "GSW_CAMPAIGN_GROUP_DBID": str,
    "GSW_GROUP_NAME": str,
    "GSW_CAMPAIGN_NAME": str,
    "GSW_QUEUE_NAME": str,
    "GSW_CAMPAIGN_GROUP_STATUS": int,
    "GSW_CAMPAIGN_GROUP_ACTION": int,
    "GSW_CAMPAIGN_GROUP_ACTOR": int,
    "GSW_STAT_BUSY_FACTOR": _NUMBER_OR_NULL,
    "GSW_STAT_HIT_RATIO": _NUMBER_OR_NULL,
    "GSW_STAT_OVERDIAL_RATE": _NUMBER_OR_NULL,
    "GSW_STAT_TIME_TO_COMPLETE": _NUMBER_OR_NULL,
    "GSW_CALLING_LISTS": list,
}
#: The group statistics: present in every body, a non-negative number or null.
STATISTICS = (
    "GSW_STAT_BUSY_FACTOR",
    "GSW_STAT_HIT_RATIO",
    "GSW_STAT_OVERDIAL_RATE",
    "GSW_STAT_TIME_TO_COMPLETE",
)
#: Present together or not at all.
OPTIMIZE = ("GSW_OPTIMIZE_BY", "GSW_OPTIMIZE_GOAL")
#: Present while the group has a dial mode.
DIALING_FIELDS = {"GSW_DIAL_MODE", *OPTIMIZE}
OPTIONAL = {"GSW_CAMPAIGN_TEMPLATE_NAME", *DIALING_FIELDS}
#: The fields of each entry of GSW_CALLING_LISTS.
LIST_FIELDS = (
    "GSW_CALLING_LIST_NAME",
    "GSW_CALLING_LIST_DBID",
    "GSW_STAT_HIT_RATIO",
    "GSW_STAT_TIME_TO_COMPLETE",
)


def assert_mandatory_fields(body: dict[str, Any]) -> None:
    """Every mandatory field with its JSON type (a bool is not an int here), and no
    field outside the contract."""
    for name, kind in MANDATORY.items():
        assert name in body, f"{name} missing from {body}"
        value = body[name]
        assert isinstance(value, kind) and not isinstance(value, bool), (name, value)
    assert set(body) <= set(MANDATORY) | OPTIONAL, set(body) - set(MANDATORY) - OPTIONAL
    assert body["GSW_USER_EVENT"] == "CampaignGroupState"
    assert re.fullmatch(r"\d+\.\d{3}", body["GSW_DATE_TIME"]), body["GSW_DATE_TIME"]
