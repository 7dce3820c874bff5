"""The dashboard's layout, measured in the page itself by headless Chromium.

A same-origin proxy in front of a real sink adds one script, ``/layout-probe.js``, to the
dashboard's page (the page's Content-Security-Policy allows scripts from its own origin
only); everything else is the sink's own answer, byte for byte. The script measures the
rendered page with getBoundingClientRect and scrollWidth/clientWidth and writes what it
found, as JSON, into a hidden ``<div id="layout-report">``, which ``--dump-dom`` returns.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from support.net import LOCALHOST

PROBE_PATH = "/layout-probe.js"
#: The sink's headers the proxy passes on (its Content-Security-Policy above all).
PASSED_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Cache-Control")

#: Runs after dashboard.js (both deferred, in order) and reports after every redraw.
PROBE_JS = r"""
"use strict";
(function () {
  const SLACK = 0.5; // px: sub-pixel rounding of borders
  function describe(node) {
    const cls = typeof node.className === "string" && node.className ? "." + node.className.trim().replace(/\s+/g, ".") : "";
    const text = (node.textContent || "").trim().replace(/\s+/g, " ").slice(0, 40);
    return node.tagName.toLowerCase() + (node.id ? "#" + node.id : "") + cls + (text ? " '" + text + "'" : "");
  }
  function clips(node) {
    return getComputedStyle(node).overflowX !== "visible";
  }
  // inside an element that clips it (that element is measured itself), below the card
  function clippedWithin(node, card) {
    for (let up = node.parentElement; up && up !== card; up = up.parentElement) {
      if (clips(up)) return true;
    }
    return false;
  }
  function measure() {
    const problems = [];
    const page = document.documentElement;
    if (page.scrollWidth > page.clientWidth) {
      problems.push("the page scrolls sideways: scrollWidth " + page.scrollWidth + " > " + page.clientWidth);
    }
    const cards = Array.from(document.querySelectorAll(".card"));
    for (const card of cards) {
      const box = card.getBoundingClientRect();
      if (box.left < -SLACK || box.right > innerWidth + SLACK) {
        problems.push(describe(card).slice(0, 30) + " sticks out of the window: " + box.left + ".." + box.right);
      }
      for (const node of card.querySelectorAll("*")) {
        const r = node.getBoundingClientRect();
        if (r.width === 0 && r.height === 0) continue; // not rendered
        if (!clippedWithin(node, card) && (r.left < box.left - SLACK || r.right > box.right + SLACK)) {
          problems.push(describe(node) + " spills out of its card: " + r.left.toFixed(1) + ".." + r.right.toFixed(1) +
            " outside " + box.left.toFixed(1) + ".." + box.right.toFixed(1));
        }
        if (node instanceof HTMLElement && clips(node) && node.scrollWidth > node.clientWidth + 1) {
          const style = getComputedStyle(node);
          if (style.textOverflow !== "ellipsis") {
            problems.push(describe(node) + " cuts or scrolls its content sideways: scrollWidth " +
              node.scrollWidth + " > clientWidth " + node.clientWidth);
          }
        }
      }
    }
    const headers = Array.from(document.querySelectorAll("#groups thead th"));
    const table = document.getElementById("groups").getBoundingClientRect();
    return {
      width: innerWidth,
      updates: Number(document.body.getAttribute("data-updates") || 0),
      cards: cards.length,
      rows: document.querySelectorAll("#groups tr.group-row").length,
      columns: headers.length,
      table_width: Math.round(table.width),
      problems: problems,
    };
  }
  function report() {
    let out = document.getElementById("layout-report");
    if (!out) {
      out = document.createElement("div");
      out.id = "layout-report";
      out.hidden = true;
      document.body.appendChild(out);
    }
    out.textContent = JSON.stringify(measure());
  }
  setInterval(report, 250);
})();
"""

REPORT = re.compile(r'<div id="layout-report" hidden="">(?P<json>.*?)</div>', re.DOTALL)


def layout_report(dom: str) -> dict[str, Any]:
    """The probe's last report in a dumped DOM."""
    match = REPORT.search(dom)
    assert match, "no layout report in the page: the probe did not run"
    report: dict[str, Any] = json.loads(html.unescape(match["json"]))
    return report


@contextlib.asynccontextmanager
async def layout_probe(upstream: str) -> AsyncIterator[str]:
    """``async with layout_probe(sink_url) as url``: the dashboard with the probe, at url."""
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def forward(request: web.Request) -> web.Response:
        if request.path == PROBE_PATH:
            return web.Response(text=PROBE_JS, content_type="application/javascript")
        async with session.get(upstream + request.path_qs) as answer:
            body = await answer.read()
            headers = {k: v for k, v in answer.headers.items() if k in PASSED_HEADERS}
            if request.path == "/":
                tag = f'<script src="{PROBE_PATH}" defer></script>\n</head>'.encode()
                body = body.replace(b"</head>", tag, 1)
            return web.Response(
                body=body,
                status=answer.status,
                headers=headers,
                content_type=answer.content_type,
                charset=answer.charset,
            )

    app = web.Application()
    app.router.add_get("/{path:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOCALHOST, 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://{LOCALHOST}:{port}"
    finally:
        await runner.cleanup()
        await session.close()
