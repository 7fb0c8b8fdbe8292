"""Running the gateway: CLI, serving, worker processes, TLS, memory, the demo."""
