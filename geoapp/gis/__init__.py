"""Loading and validating gis_data/: the city's streets, zones, units, representatives, taxonomy."""
