"""Fault drills (python -m conformance drills): what the dev tuning of plan 12.1 costs when the
server is killed and when the node loses power, side by side with the durable baseline."""
