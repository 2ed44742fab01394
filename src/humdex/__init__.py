"""Query by humming: find the song a hummed, sung or whistled melody comes from."""

from .catalog import Catalog, Song
from .contour import Contour
from .errors import HumdexError
from .search import Hit, Query, SearchResult, load_query, query_from_audio, search

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
