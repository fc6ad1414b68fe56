"""Where a run sends and looks: the live systems or a seeded local sandbox, opened without a plan."""
