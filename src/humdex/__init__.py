"""Query by humming: find the song a hummed, sung or whistled melody comes from.

The public names load on first use, so `import humdex.cli` stays light (the CLI sets native
libraries' thread settings before numpy, torch or faiss load: settings.configure_native_runtime).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {"Catalog": "humdex.catalog.catalog", "Song": "humdex.catalog.catalog",
            "HumdexError": "humdex.errors", "Contour": "humdex.frontend.contour",
            "Hit": "humdex.search", "Query": "humdex.search", "SearchResult": "humdex.search",
            "load_query": "humdex.search", "query_from_audio": "humdex.search", "search": "humdex.search"}

__all__ = ["Catalog", "Contour", "Hit", "HumdexError", "Query", "SearchResult", "Song", "__version__",
           "load_query", "query_from_audio", "search"]

if TYPE_CHECKING:
    from humdex.catalog.catalog import Catalog, Song
    from humdex.errors import HumdexError
    from humdex.frontend.contour import Contour
    from humdex.search import Hit, Query, SearchResult, load_query, query_from_audio, search


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'humdex' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
