"""Functions acting as the app: the caller's platform identity, privileged data access,
the platforms' server APIs (shared token cache, content checks, messages, phone numbers)."""
