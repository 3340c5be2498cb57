"""The tools a lab drives, as the labs and checks use them: the Docker engine (dockerlab),
Dockerfiles read with Docker's own parser (dockerfile), Compose (compose), kubectl and kind (k8s),
any command line with bounded time (commands), hadolint (lint), the layer scanner for secrets
(secretscan), commands shown with secrets masked (masked), the charts of what they measured
(plots) and a teaching copy of the HPA's control loop over Compose replicas (autoscale). Imports
labkit.core and labkit.machine."""
