"""The sample model server as the labs talk to it (``from labkit import serving``): known and
fresh inputs, their answers, one prediction call, readiness, training (app); the HTTP
serving contracts' requirements and timed probes (contract); a bounded local load (load); one
replica's capacity under a stepped locust load (capacity, with locust_user, the user it runs).
Imports labkit.core, labkit.machine and labkit.tools."""

from .app import (IRIS_CLASSES, IRIS_ROWS, predict, predicted_digests, random_rows, rows_digest, train,
                  wait_ready)

__all__ = ["IRIS_CLASSES", "IRIS_ROWS", "predict", "predicted_digests", "random_rows", "rows_digest", "train",
           "wait_ready"]
