"""``chain ui``: a local web page (Gradio) to try label swaps on one frame, then run the whole video.

Needs the optional extra: ``pip install "chain[ui]"``. The page is a thin layer over the library:
previews go through the same `chain.engine.pipeline.Chain` conversion and remapping as runs, and a run
is `chain.api.run`, exactly what ``chain run`` does (the page shows that command line).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from chain.errors import ChainError

HOST = "127.0.0.1"  # never another interface: the page reads and writes files on this computer


def launch(source: str | None = None, *, out_dir: Path = Path("chain-ui-outputs"), port: int | None = None) -> None:
    """Serve the page on 127.0.0.1 until Ctrl-C; runs write into ``out_dir`` (created if missing).

    A run still going when the server stops is cancelled, so its partial outputs are removed.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves this computer
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ChainError('chain ui needs Gradio: pip install "chain[ui]"') from None
    from chain.ui.page import CSS, build_page

    if out_dir.exists() and not out_dir.is_dir():
        raise ChainError(f"the --out folder {out_dir} is a file; give a folder for the run outputs")
    out_dir.mkdir(parents=True, exist_ok=True)
    page = build_page(out_dir.resolve(), source)
    try:
        page.queue(default_concurrency_limit=1).launch(
            server_name=HOST, server_port=port, inbrowser=False, share=False, allowed_paths=[str(out_dir.resolve())],
            ssr_mode=False, css=CSS, footer_links=[], quiet=True, show_error=False, prevent_thread_lock=True)
        print(f"chain ui: {page.local_url} (outputs go to {out_dir}; Ctrl-C stops)", file=sys.stderr, flush=True)
        while page.is_running:
            time.sleep(0.2)
    finally:
        page.runner.cancel()  # a run left going removes its partial outputs before the process ends
        page.runner.wait(timeout=60)
        page.close()
