"""Judge: every record into one outcome; rules, timing, the tally, diagnoses and the verdict."""
