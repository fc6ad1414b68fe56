"""Configuration: the schema of every section, the one loader, its options and files; imports only the ground floor."""
