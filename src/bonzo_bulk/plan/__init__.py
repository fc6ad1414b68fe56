"""Plan: records, integrations, templates, encodings, the contract; everything decided before a lead is sent."""
