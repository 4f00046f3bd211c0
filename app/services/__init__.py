"""Use cases. Each public function owns its database transaction (the unit of work)."""
