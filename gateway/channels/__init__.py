"""Channel adapters: one module per provider, the only place that knows its field names and
answer format. Each parses a provider request into a neutral event and renders the reply."""
