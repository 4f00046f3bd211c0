"""HTTP entry points: blueprints translate requests to service calls and results to JSON."""
