"""The cloud platforms, on local emulators and on real accounts: every price with its source and
date (prices), spend guardrails and run ids (spend), the moto emulator and child servers (emulators), SageMaker's serving contract and
start-up window (sagemaker), SageMaker target tracking and the scaling configuration of a run's
endpoints (autoscaling), what both platforms' targets share (target: one Leftover, one
Target interface), the AWS target with its tagged cleanup (aws) and its tagged resources and
sweep (aws_resources), and Vertex AI's stand-in, contract, local endpoint, target and sweep
(the vertex package), and budgets, their alerts and seeded Cost Explorer answers (budgets). Imports every layer below it, never labkit.course."""
