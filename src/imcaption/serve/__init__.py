"""The HTTP service (`imcaption serve MODEL`): FastAPI endpoints, micro-batching, request limits, the web page."""
