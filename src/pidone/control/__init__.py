"""The control socket: a versioned request/reply protocol (protocol), the
non-blocking server on the init's loop (server) and the CLI's client."""
