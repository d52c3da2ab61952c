"""Route groups of the gateway, one module per area; ``gateway.service`` mixes them together."""
