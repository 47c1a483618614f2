"""The replay half of a venue's native replay round trip.

Each venue's round-trip test records its simulator first (its own scenario), then serves that
recording with the venue's own protocol (:func:`recorder.replay.serve_native`, what
``recorder replay serve`` runs) and records the replay with the recorder itself, to compare
the venue's frames per connection. :func:`record_native_replay` is that second step."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recorder.catalogue import Catalogue
from recorder.config import Config
from recorder.replay import serve_native
from recorder.venues import CATALOGUE
from tests.e2e import run_with


def record_native_replay(recording: Path, venue: str, config: Callable[[str], Config], *,
                         speed: float, linger: float,
                         server_options: dict[str, dict[str, Any]] | None = None,
                         catalogue: Catalogue = CATALOGUE,
                         exit_code: int | None = 0) -> tuple[str, dict[str, int]]:
    """Serve ``venue``'s recording under the data dir ``recording`` natively at ``speed``
    (``server_options`` and ``catalogue`` as :func:`serve_native` takes them) and record it
    with ``config(url)``, ``url`` being the replay server's: the recorder runs until the
    replay ends by itself, ``linger`` seconds after its last frame, and must end with
    ``exit_code`` (None: any). Returns the replay's run id and the frames published per
    venue."""

    async def main() -> tuple[str, dict[str, int]]:
        urls: dict[str, str] = {}
        ready = asyncio.Event()

        def on_ready(u: dict[str, str]) -> None:
            urls.update(u)
            ready.set()

        serving = asyncio.create_task(serve_native(
            recording, [venue], speed=speed, linger=linger, on_ready=on_ready,
            server_options=server_options, catalogue=catalogue))
        await ready.wait()

        async def scenario(stop: asyncio.Event) -> None:
            await asyncio.wait({serving})  # the replay ends by itself after its last frame

        result, _ = await run_with(config(urls[venue]), scenario)
        if exit_code is not None:
            assert result.exit_code == exit_code, result.reason
        return result.run_id, serving.result()

    return asyncio.run(main())
