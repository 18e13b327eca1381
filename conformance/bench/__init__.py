"""What the plan's dev tuning (12.1) really buys: pgbench, side by side on one server."""
