"""Settings, database and key handling of the city's API."""
