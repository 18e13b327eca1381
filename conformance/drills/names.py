"""What the drills can be asked for, by name: light enough for the CLI's --help to list them
without importing the drills (which import psycopg and the targets)."""

# The faults `drills --faults` takes.
FAULTS = ("process-kill", "init-kill", "backup-kill", "pid-file", "power-cut")
# The configurations drilled by default (`--configs`): the durable baseline and the one the
# manifests ship (bench.configs.MANIFESTS); `--configs plan-12.1` drills the plan's text.
CONFIGS = ("durable", "manifests")
# What a trial of each fault is called in the report.
TRIAL_NAMES = {"process-kill": "process kill", "power-cut": "power cut", "init-kill": "kill after the init",
               "backup-kill": "kill during a backup"}
