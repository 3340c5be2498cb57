"""Sample ML model server carried through every lab of the workbook.

An Iris classifier (scikit-learn) behind a small stdlib HTTP server that speaks
the plain REST contract (/healthz, /readyz, /predict, /metrics, /version), the
SageMaker contract (/ping, /invocations) and the Vertex AI contract (AIP_* env).
Run it with ``python -m model_server --help``.
"""
