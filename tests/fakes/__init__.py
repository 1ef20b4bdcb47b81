"""Local stand-ins for the services Corral talks to, driven by the real client libraries."""
