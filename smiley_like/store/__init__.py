"""The run database: schema, engine, writer (one batch, one transaction) and queries."""
