"""The HTTP service: REST API and the web page over a catalog."""
