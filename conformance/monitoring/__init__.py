"""The plan's alarms (8.1) as Prometheus rules, and their tests with promtool."""
