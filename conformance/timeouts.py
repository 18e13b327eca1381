"""Every bound the suite waits for, in one place (seconds). Generous: a slow CI runner must
not fail a check; a hung one must still end."""

SERVER_READY = 120          # a started server answers a query
SCRIPT = 300                # a Job's or CronJob's script runs to the end
PROBE = 30                  # one exec probe
RELOAD = 15                 # settings changed by ALTER SYSTEM and a reload show in SHOW
IMAGE_PULL = 600            # pulling the postgres image on a cold machine
CONTAINER_STOP = 60         # = terminationGracePeriodSeconds: a clean shutdown with checkpoint
KIND_CREATE = 600           # kind create cluster, node image pulled
STATEFULSET_READY = 600     # all replicas Ready after apply (image pull, volume provisioning)
JOB_COMPLETE = 600          # a Job reaches Complete or Failed
POD_GONE = 120              # a deleted or scaled-down pod disappears
PORT_FORWARD_READY = 30     # kubectl port-forward prints its Forwarding line
KUBECTL = 120               # any single kubectl command
POLL_INTERVAL = 2           # between two status polls
IMAGE_BUILD = 600           # debootstrap of the stand-ins' base, or one docker build
VM_BOOT = 240                # the drill VM boots under TCG (software emulation) and its server answers
SECOND_SERVER = 20          # a second server on a data directory in use is refused at once; one still running started
