"""Query by humming: find the song a hummed, sung or whistled melody comes from."""

from humdex.catalog.catalog import Catalog, Song
from humdex.errors import HumdexError
from humdex.frontend.contour import Contour
from humdex.search import Hit, Query, SearchResult, load_query, query_from_audio, search

__all__ = [
           "Catalog",
           "Contour",
           "Hit",
           "HumdexError",
           "Query",
           "SearchResult",
           "Song",
           "__version__",
           "load_query",
           "query_from_audio",
           "search",
]
__version__ = "0.1.0"
