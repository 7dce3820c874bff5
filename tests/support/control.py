"""A small client of the control API (aiohttp.ClientSession, bounded waits)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp


class Control:
    """A small client of the control API (aiohttp.ClientSession, bounded waits)."""

    def __init__(self, session: Any, base: str) -> None:
        self.session = session
        self.base = base

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        within: float = 5.0,
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=within)}
        if params:
            kwargs["params"] = {k: str(v) for k, v in params.items()}
        if json_body is not None:
            kwargs["json"] = json_body
        if data is not None:
            kwargs["data"] = data
        async with self.session.request(method, self.base + path, **kwargs) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def act(self, dbid: int | str, req: str, **params: Any) -> tuple[int, Any]:
        """POST /campaigngroups/{dbid}?req=...&<params> (as query parameters)."""
        return await self.request("POST", f"/campaigngroups/{dbid}", params={"req": req, **params})

    async def group(self, dbid: int | str) -> dict[str, Any]:
        status, data = await self.request("GET", f"/campaigngroups/{dbid}")
        assert status == 200, data
        assert isinstance(data, dict)
        return data

    async def status_code(self, dbid: int | str) -> int:
        return int((await self.group(dbid))["status"]["code"])

    async def ok(self, dbid: int | str, req: str, **params: Any) -> dict[str, Any]:
        status, data = await self.act(dbid, req, **params)
        assert status == 200, f"{req} on {dbid}: HTTP {status} {data}"
        assert isinstance(data, dict)
        return data
